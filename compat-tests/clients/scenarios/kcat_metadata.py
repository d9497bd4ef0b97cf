"""kcat -L: metadata as seen by Debian's kcat (librdkafka 2.0.2, the strictest ApiVersions client).

Creates a 3-partition topic, then checks both the plain and the JSON (-J) listing:
one broker at the bootstrap address, the topic with partitions 0..2, each led by that broker
with itself as the only replica and ISR, and no per-topic/partition error.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, ck_admin, ck_create_topics, log, unique_topic  # noqa: E402

bs = bootstrap()
c = Checks("kcat metadata")
topic = unique_topic("kcat-md")
ck_create_topics(ck_admin(bs), {topic: 3})

base = ["kcat", "-b", bs, "-m", "10", "-X", "api.version.request.timeout.ms=5000"]

plain = subprocess.run(base + ["-L"], capture_output=True, timeout=60)
text = plain.stdout.decode("utf-8", "replace")
c.equal(plain.returncode, 0, f"kcat -L exit status (stderr: {plain.stderr.decode()[-400:]!r})")
c.check(" 1 brokers:" in text, f"kcat -L should report exactly 1 broker, output:\n{text[:600]}")
c.check(f'topic "{topic}" with 3 partitions:' in text,
        f"kcat -L does not list {topic} with 3 partitions")

js = subprocess.run(base + ["-L", "-J"], capture_output=True, timeout=60)
c.equal(js.returncode, 0, f"kcat -L -J exit status (stderr: {js.stderr.decode()[-400:]!r})")
try:
    md = json.loads(js.stdout)
except ValueError as exc:
    c.fail(f"kcat -L -J printed invalid JSON ({exc}): {js.stdout[:300]!r}")
    c.finish()

brokers = md.get("brokers", [])
c.equal(len(brokers), 1, "number of brokers in metadata")
broker_ids = {b.get("id") for b in brokers}
if brokers:
    c.equal(brokers[0].get("name"), bs, "advertised broker address (host:port)")
c.check(md.get("controllerid") in broker_ids,
        f"controller id {md.get('controllerid')!r} is not one of the brokers {broker_ids}")

topics = {t.get("topic"): t for t in md.get("topics", [])}
t = topics.get(topic)
if c.check(t is not None, f"topic {topic} missing from kcat -L -J (topics: {sorted(topics)[:10]})"):
    c.check("error" not in t, f"topic-level error reported: {t.get('error')!r}")
    parts = sorted(t.get("partitions", []), key=lambda p: p.get("partition", -1))
    c.equal([p.get("partition") for p in parts], [0, 1, 2], "partition ids")
    for p in parts:
        pid = p.get("partition")
        c.check("error" not in p, f"partition {pid} error: {p.get('error')!r}")
        c.check(p.get("leader") in broker_ids, f"partition {pid} leader {p.get('leader')!r}")
        c.equal([r.get("id") for r in p.get("replicas", [])], [p.get("leader")],
                f"partition {pid} replicas")
        c.equal([r.get("id") for r in p.get("isrs", [])], [p.get("leader")],
                f"partition {pid} isrs")

# Metadata for one topic only (-t) must not fail and must describe just that topic.
one = subprocess.run(base + ["-L", "-J", "-t", topic], capture_output=True, timeout=60)
c.equal(one.returncode, 0, "kcat -L -J -t <topic> exit status")
try:
    names = [x.get("topic") for x in json.loads(one.stdout).get("topics", [])]
    c.equal(names, [topic], "topics listed by kcat -L -t <topic>")
except ValueError as exc:
    c.fail(f"kcat -L -J -t printed invalid JSON: {exc}")

log(text.strip().splitlines()[0] if text.strip() else "(empty kcat -L output)")
c.finish()
