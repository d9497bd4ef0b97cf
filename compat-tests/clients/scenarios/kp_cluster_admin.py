"""kafka-python: describe_cluster (DescribeCluster) and describe_log_dirs (DescribeLogDirs).

describe_cluster names one broker, which is also the controller, and a cluster id.
describe_log_dirs, after 20 records into partition 0 of a 2-partition topic, reports one log
dir (an absolute path) with partition 0 larger than 0 bytes, partition 1 empty, and usable
bytes within total bytes.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, unique_topic, wait_until  # noqa: E402
from kafka import KafkaProducer  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

bs = bootstrap()
c = Checks("kafka-python cluster admin")
admin = KafkaAdminClient(bootstrap_servers=bs, client_id="gregor-compat", request_timeout_ms=20000)

cluster = admin.describe_cluster()
c.check(bool(cluster.get("cluster_id")), f"cluster id: {cluster}")
brokers = cluster.get("brokers", [])
c.equal(len(brokers), 1, "brokers described")
c.equal(cluster.get("controller_id"), brokers[0]["broker_id"] if brokers else None, "controller is the broker")

topic = unique_topic("kp-logdirs")
admin.create_topics([NewTopic(topic, 2, 1)], timeout_ms=20000)
wait_until(lambda: topic in admin.list_topics(), f"{topic} in list_topics", deadline_s=15)
p = KafkaProducer(bootstrap_servers=bs, acks="all")
for i in range(20):
    p.send(topic, value=b"x" * 100, partition=0)
p.flush(30)
p.close()

dirs = admin.describe_log_dirs({topic: [0, 1]})
c.equal(len(dirs), 1, "brokers answering DescribeLogDirs")
log_dirs = dirs[0]["log_dirs"] if dirs else []
c.equal(len(log_dirs), 1, "log dirs")
d = log_dirs[0] if log_dirs else {}
c.equal(d.get("error_code"), 0, "log dir error code")
c.check(str(d.get("log_dir", "")).startswith("/"), f"log dir is an absolute path: {d.get('log_dir')}")
sizes = {p["partition_index"]: p["partition_size"] for t in d.get("topics", []) if t["name"] == topic
         for p in t["partitions"]}
c.check(sizes.get(0, 0) > 2000, f"partition 0 size {sizes.get(0)}")
c.equal(sizes.get(1), 0, "partition 1 size")
if "total_bytes" in d:
    c.check(0 < d["usable_bytes"] <= d["total_bytes"], f"usable {d['usable_bytes']} of {d['total_bytes']}")
admin.close()
c.finish()
