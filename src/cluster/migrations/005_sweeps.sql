-- gregor shared mode, schema version 5: the batch index is swept in small transactions.
--
-- Deleting a topic, or moving a partition's log start far, used to delete every batch row
-- concerned in the one transaction that made the change (about 1.5 µs a row here, so
-- tens of seconds for a topic of tens of millions of batches, past the store timeout).
-- Now the change only moves the log start or deletes the topic's and partitions' rows; the
-- batch rows no log holds any more are deleted afterwards, a bounded number per transaction
-- (`Store::sweep`), with the objects none of whose batches is left.

-- A deleted topic's batch rows outlive its partition rows until swept.
ALTER TABLE batches DROP CONSTRAINT batches_topic_id_partition_fkey;

-- Topics deleted whose batch rows may not all be swept yet.
CREATE TABLE deleted_topics (
    topic_id    uuid PRIMARY KEY,
    deleted_at  timestamptz NOT NULL DEFAULT now()
);
