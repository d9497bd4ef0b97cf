"""The shop example (examples/shop) against a gregor started exactly as its docker-compose.yml
starts the broker (the compose file's KAFKA_* environment, hosts and ports made local, see
examples/shop/run_local.py), through both listeners: the order, inventory and analytics
services (confluent-kafka) on the internal one, payment and email (kafkajs) on the host one.

Checks: each service group saw every order exactly once; the analytics replay saw all of
them; every group's committed offsets equal the log end (lag 0), in the broker's Prometheus
metrics too; and each listener tells its clients its own advertised address. It starts its own broker, so it skips against an
external one.
"""
import os
import re
import shutil
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, skip  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "examples", "shop"))
import run_local  # noqa: E402
from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

ORDERS = 200

if os.environ.get("GREGOR_BOOTSTRAP"):
    skip("starts its own broker from the compose environment")
binary = os.environ.get("GREGOR_BIN", os.path.join(REPO, "target", "release", "gregor"))
env, advertised = run_local.localise(run_local.compose_broker_env())
internal, host = advertised["PLAINTEXT"], advertised["PLAINTEXT_HOST"]
work = tempfile.mkdtemp(prefix="gregor-shop-")
http_port = run_local.free_port()
broker = run_local.start_gregor(binary, env, os.path.join(work, "data"), http_listen=f"127.0.0.1:{http_port}")


def metrics():
    """{(name, labels text): value} from the broker's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10).read().decode()
    found = re.findall(r"^(\w+)(\{[^}]*\})? (\S+)$", text, re.M)
    return {(name, labels): float(value) for name, labels, value in found}


c = Checks("shop")
try:
    for bootstrap in (internal, host):
        md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=20)
        told = [f"{b.host}:{b.port}" for b in md.brokers.values()]
        c.check(told == [bootstrap], f"Metadata through {bootstrap} advertises {told}")

    summaries = run_local.run_orders_through_the_shop(ORDERS, internal, host)
    c.check(summaries["orders"] == {"service": "orders", "sent": ORDERS, "failed": 0}, f"orders: {summaries['orders']}")
    every = list(range(1, ORDERS + 1))
    for name in ("inventory", "payment", "email", "analytics"):
        got = summaries[name]["order_ids"]
        c.check(got == every, f"{name} saw each order once: {len(got)} orders, {len(set(got))} distinct")

    # Lag 0: every group committed the log end of every partition.
    probe = Consumer({"bootstrap.servers": internal, "group.id": "shop-probe"})
    parts = [TopicPartition("orders", p) for p in md.topics["orders"].partitions] if "orders" in md.topics else []
    if not parts:
        parts = [TopicPartition("orders", p) for p in probe.list_topics("orders", timeout=20).topics["orders"].partitions]
    ends = {tp.partition: probe.get_watermark_offsets(tp, timeout=20)[1] for tp in parts}
    probe.close()
    for name in ("inventory", "payment", "email", "analytics"):
        group = summaries[name]["group"]
        reader = Consumer({"bootstrap.servers": internal, "group.id": group})
        committed = {tp.partition: tp.offset for tp in reader.committed(parts, timeout=20)}
        reader.close()
        c.check(committed == ends, f"{group}: committed {committed}, log ends {ends}")

    # The same, as an operator sees it on /metrics.
    m = metrics()
    produced = m.get(("gregor_produced_bytes_total", '{topic="orders"}'), 0)
    c.check(produced > 0, f"/metrics: bytes produced to orders {produced}")
    for name in ("inventory", "payment", "email", "analytics"):
        group = summaries[name]["group"]
        lags = {k[1]: v for k, v in m.items() if k[0] == "gregor_consumer_lag" and f'group="{group}"' in k[1]}
        c.check(len(lags) == len(ends) and all(v == 0 for v in lags.values()), f"/metrics: lag of {group} {lags}")
    c.check(m.get(("gregor_consumer_groups", "")) is not None and m[("gregor_consumer_groups", "")] >= 4,
            f"/metrics: consumer groups {m.get(('gregor_consumer_groups', ''))}")
finally:
    broker.terminate()
    broker.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)
c.finish()
