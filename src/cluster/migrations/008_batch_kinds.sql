-- gregor shared mode, schema version 8: batch rows say what kind of batch they index.
--
-- A broker taking a partition over rebuilds only its newest part locally (as much as
-- `local.retention.bytes` keeps) and reads the rest from the store when asked. What the rest
-- means for the producers' state (their last sequences, the transactions they aborted) is worked
-- out from these rows, without reading the batches: the batch's attributes (transactional,
-- control), and for a transaction marker its type (0 abort, 1 commit) and coordinator epoch.
-- Rows committed before this version have NULLs; a partition with such rows is rebuilt whole,
-- as before, until retention lets go of them (version 9 marks those without a producer).
ALTER TABLE batches ADD COLUMN attributes smallint;
ALTER TABLE batches ADD COLUMN control_type smallint;
ALTER TABLE batches ADD COLUMN coordinator_epoch integer;
