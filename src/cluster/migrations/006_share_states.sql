-- gregor shared mode, schema version 6: share-partition state (KIP-932 share groups).
--
-- A share group's records of a partition are handed out by that partition's leader. What it
-- keeps of them (the share-partition's start offset, and the state and delivery count of the
-- records in flight) is written here before it answers the ShareFetch or ShareAcknowledge that
-- changed it, fenced by its lease and the partition's leader epoch, and the broker that leads
-- the partition next reads it back. `state` is the value of a ShareSnapshot record, as a single
-- node keeps it in `__share_group_state`.
CREATE TABLE share_states (
    topic_id      uuid NOT NULL,
    partition     int4 NOT NULL,
    group_id      text NOT NULL,
    -- The leader epoch the state was written in.
    leader_epoch  int4 NOT NULL,
    state         bytea NOT NULL,
    PRIMARY KEY (topic_id, partition, group_id)
);

-- DescribeShareGroupOffsets and DeleteGroups read a group's rows across partitions.
CREATE INDEX share_states_by_group ON share_states (group_id);
