"""kcat -P / -C: 10 000 keyed messages with headers through a 3-partition topic, byte-exact.

Producer: `kcat -P -K: -H ...` reading a generated file (one message per line, key before the
first ':'). Keys are unique; values hold arbitrary bytes except NUL and newline (including ':',
'|', tabs, UTF-8 and high bytes), a few values are ~200 KB so fetches span large batches.
Consumer: `kcat -C -e -o beginning` (partition assignment, no group) with a length-framed -f
format; every field is parsed by length, so nothing in the data can confuse the parser.

Checks: every key arrives exactly once with its exact value; the headers (including a
duplicated name and an empty value) arrive intact and in order; each message sits in the
partition librdkafka's default partitioner (CRC32 of the key mod 3) chose; within a partition
the order equals the production order; offsets are 0..n-1 without gaps; timestamps are the
producer's CreateTime (within the production window).
"""
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, ck_admin, ck_create_topics, log, unique_topic  # noqa: E402

N = int(os.environ.get("KCAT_MESSAGES", "10000"))
PARTITIONS = 3
HEADERS = [("trace", "abc-123"), ("dup", "first"), ("dup", "second"), ("colon", "a:b=c"),
           ("empty", "")]

bs = bootstrap()
c = Checks("kcat produce/consume")
topic = unique_topic("kcat-pc")
ck_create_topics(ck_admin(bs), {topic: PARTITIONS})

rng = random.Random(20260611)
value_alphabet = bytes(b for b in range(1, 256) if b != 0x0A)


def make_value(i):
    if i % 2500 == 1234:                      # a handful of large messages
        return bytes(rng.choice(value_alphabet) for _ in range(200_000))
    n = rng.choice([1, 5, 17, 64, 200, 333])
    body = bytes(rng.choice(value_alphabet) for _ in range(n))
    return b"v%d:" % i + body + "|ü€|".encode()


keys = [b"key-%05d-" % i + "ß".encode() * (i % 3) for i in range(N)]
values = [make_value(i) for i in range(N)]

with tempfile.TemporaryDirectory() as tmp:
    src = os.path.join(tmp, "in.txt")
    with open(src, "wb") as f:
        for k, v in zip(keys, values):
            f.write(k + b":" + v + b"\n")

    t_start = int(time.time() * 1000)
    cmd = ["kcat", "-b", bs, "-P", "-t", topic, "-K:", "-l", src,
           "-X", "linger.ms=20", "-X", "message.timeout.ms=30000"]
    for name, value in HEADERS:
        cmd += ["-H", f"{name}={value}"]
    prod = subprocess.run(cmd, capture_output=True, timeout=120)
    t_end = int(time.time() * 1000)
    perr = prod.stderr.decode("utf-8", "replace")
    c.equal(prod.returncode, 0, f"kcat -P exit status (stderr tail: {perr[-600:]!r})")
    c.check("Delivery failed" not in perr and "% ERROR" not in perr,
            f"kcat -P reported errors: {perr[-600:]!r}")

    # Length-framed output: @@partition|offset|timestamp|keylen|valuelen|<key><value>|headers\n
    fmt = "@@%p|%o|%T|%K|%S|%k%s|%h\\n"
    cons = subprocess.run(["kcat", "-b", bs, "-C", "-t", topic, "-o", "beginning", "-e",
                           "-f", fmt, "-X", "fetch.wait.max.ms=100"],
                          capture_output=True, timeout=120)
    cerr = cons.stderr.decode("utf-8", "replace")
    c.equal(cons.returncode, 0, f"kcat -C exit status (stderr tail: {cerr[-600:]!r})")
    out = cons.stdout

records = []  # (partition, offset, ts, key, value, headers)
pos = 0
try:
    while pos < len(out):
        if out[pos:pos + 2] != b"@@":
            raise ValueError(f"expected record start at byte {pos}: {out[pos:pos + 40]!r}")
        pos += 2
        fields = []
        for _ in range(5):
            end = out.index(b"|", pos)
            fields.append(int(out[pos:end]))
            pos = end + 1
        p, o, ts, klen, vlen = fields
        key = out[pos:pos + klen] if klen >= 0 else None
        pos += max(klen, 0)
        value = out[pos:pos + vlen] if vlen >= 0 else None
        pos += max(vlen, 0)
        if out[pos:pos + 1] != b"|":
            raise ValueError(f"framing lost after record p{p}/o{o} at byte {pos}")
        end = out.index(b"\n", pos)
        hdrs = out[pos + 1:end].decode("utf-8", "replace")
        pos = end + 1
        records.append((p, o, ts, key, value, hdrs))
except ValueError as exc:
    c.fail(f"could not parse kcat -C output: {exc}")

c.equal(len(records), N, "number of messages consumed")
want_headers = ",".join(f"{n}={v}" for n, v in HEADERS)
index_of = {k: i for i, k in enumerate(keys)}
seen = {}
by_partition = {p: [] for p in range(PARTITIONS)}
for p, o, ts, key, value, hdrs in records:
    i = index_of.get(key)
    if not c.check(i is not None, f"p{p}/o{o}: unexpected key {key!r:.60}"):
        continue
    c.check(i not in seen, f"key {key!r} delivered twice (p{p}/o{o} and {seen.get(i)})")
    seen[i] = (p, o)
    c.check(value == values[i], f"p{p}/o{o} key {key!r}: value differs "
            f"(len {len(value or b'')} vs {len(values[i])})")
    c.equal(hdrs, want_headers, f"p{p}/o{o} headers")
    c.equal(p, zlib.crc32(key) % PARTITIONS, f"key {key!r} partition (CRC32 partitioner)")
    c.check(t_start - 5000 <= ts <= t_end + 5000,
            f"p{p}/o{o} timestamp {ts} outside production window [{t_start}, {t_end}]")
    if p in by_partition:
        by_partition[p].append((o, i))
    else:
        c.fail(f"message in nonexistent partition {p}")

c.equal(len(seen), N, "distinct keys consumed")
for p, rows in by_partition.items():
    offsets = [o for o, _ in rows]
    c.equal(offsets, list(range(len(rows))), f"partition {p} offsets contiguous from 0")
    order = [i for _, i in rows]
    c.check(order == sorted(order), f"partition {p}: messages out of production order")
    c.check(len(rows) > 0, f"partition {p} received no messages")

log(f"consumed {len(records)} records; per partition: "
    + ", ".join(f"p{p}={len(r)}" for p, r in by_partition.items()))
c.finish()
