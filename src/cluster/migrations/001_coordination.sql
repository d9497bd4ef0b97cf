-- gregor shared mode, schema version 1: what PostgreSQL holds for a cluster of brokers
-- (the role KRaft's metadata log plays in Kafka). Applied once, in one transaction.

-- Brokers that registered, with the lease their heartbeats extend. A broker whose lease ran
-- out is not live: its partitions go to others, and its commits are refused. Each start of a
-- broker is a new incarnation: a previous process with the same node id is fenced.
CREATE TABLE brokers (
    node_id          integer PRIMARY KEY,
    incarnation      uuid NOT NULL,
    rack             text,
    -- listener name -> "host:port", as the broker advertises them
    listeners        jsonb NOT NULL,
    registered_at    timestamptz NOT NULL DEFAULT now(),
    lease_expires_at timestamptz NOT NULL
);

CREATE TABLE topics (
    topic_id    uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    partitions  integer NOT NULL CHECK (partitions > 0),
    configs     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per partition: its leader (the broker holding its lease) and the leader epoch, which
-- goes up with every move; the log's bounds as committed batches made them.
CREATE TABLE partitions (
    topic_id       uuid NOT NULL REFERENCES topics ON DELETE CASCADE,
    partition      integer NOT NULL,
    leader         integer REFERENCES brokers ON DELETE SET NULL,
    leader_epoch   integer NOT NULL DEFAULT 0,
    log_start      bigint NOT NULL DEFAULT 0,
    log_end        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition)
);
CREATE INDEX partitions_by_leader ON partitions (leader);

-- Objects written to the object store. A row exists once a commit references the object;
-- objects in the store without a row are garbage (a crash between upload and commit).
CREATE TABLE objects (
    object_key  text PRIMARY KEY,
    size        bigint NOT NULL,
    written_by  integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The batch index: where each committed batch of a partition is.
CREATE TABLE batches (
    topic_id        uuid NOT NULL,
    partition       integer NOT NULL,
    base_offset     bigint NOT NULL,
    last_offset     bigint NOT NULL,
    object_key      text NOT NULL REFERENCES objects,
    byte_offset     bigint NOT NULL,
    byte_length     integer NOT NULL,
    max_timestamp   bigint NOT NULL,
    producer_id     bigint NOT NULL DEFAULT -1,
    producer_epoch  smallint NOT NULL DEFAULT -1,
    base_sequence   integer NOT NULL DEFAULT -1,
    leader_epoch    integer NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset),
    FOREIGN KEY (topic_id, partition) REFERENCES partitions ON DELETE CASCADE
);
CREATE INDEX batches_by_object ON batches (object_key);
