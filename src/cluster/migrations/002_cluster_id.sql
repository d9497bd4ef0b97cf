-- gregor shared mode, schema version 2: the cluster's id, which every broker of the cluster
-- reports (Metadata, DescribeCluster) and writes into its data directory. The first broker to
-- start sets it.
CREATE TABLE cluster (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    cluster_id  text NOT NULL
);
