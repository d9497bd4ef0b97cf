-- gregor shared mode, schema version 4: the cluster's security documents — its ACLs, SCRAM
-- credentials and client quotas, each one text of JSON lines that every broker reads. A
-- change replaces a document only in the version it was made on (optimistic concurrency), and
-- brokers take up a document again when its version moves.
CREATE TABLE documents (
    name     text PRIMARY KEY,
    version  bigint NOT NULL,
    body     text NOT NULL
);
