-- gregor shared mode, schema version 7: a partition's index can be rewritten.
--
-- A leader commits what it gathered from every partition it leads in one object, so a
-- partition's batches end up spread over many small objects shared with other partitions. Its
-- leader later writes them again, a range at a time, into objects of that partition alone
-- (merging), or writes the range as its local log cleaner left it (compaction), and replaces
-- the range's batch rows in one transaction fenced as a commit is. `merged_to` is where the
-- range written so far ends, so the next leader goes on from there instead of starting over.
ALTER TABLE partitions ADD COLUMN merged_to bigint NOT NULL DEFAULT 0;
