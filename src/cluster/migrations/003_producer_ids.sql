-- gregor shared mode, schema version 3: producer ids are unique across the cluster. Each
-- broker takes blocks of them from this counter (as Kafka's brokers take theirs from the
-- controller, KIP-730), so idempotent producers on different brokers never share an id.
ALTER TABLE cluster ADD COLUMN next_producer_id bigint NOT NULL DEFAULT 0;
