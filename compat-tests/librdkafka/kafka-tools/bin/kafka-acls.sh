#!/usr/bin/env python3
"""A stand-in for Kafka's kafka-acls.sh, enough for librdkafka's tests 0109, 0115 and 0119:
--add and --remove of ALLOW/DENY ACLs on topics, groups, transactional ids or the cluster,
against a PLAINTEXT broker (CreateAcls v1 and DeleteAcls v1 on a plain socket, no client
library). run.sh points KAFKA_PATH at the folder above bin/ for tests tagged `acl`.

Usage as Kafka's tool: kafka-acls.sh --bootstrap-server HOST:PORT (--add|--remove) [--force]
  (--allow-principal P | --deny-principal P)... [--allow-host H | --deny-host H]
  (--operation OP)... (--topic T | --group G | --transactional-id T | --cluster)
  [--resource-pattern-type literal|prefixed]
"""
import socket
import struct
import sys

OPERATIONS = {"all": 2, "read": 3, "write": 4, "create": 5, "delete": 6, "alter": 7, "describe": 8,
              "clusteraction": 9, "describeconfigs": 10, "alterconfigs": 11, "idempotentwrite": 12}
RESOURCES = {"--topic": 2, "--group": 3, "--cluster": 4, "--transactional-id": 5}
PATTERNS = {"literal": 3, "prefixed": 4}
ALLOW, DENY = 3, 2


def fail(message):
    print(f"kafka-acls.sh (gregor test stand-in): {message}", file=sys.stderr)
    sys.exit(1)


def parse(argv):
    opts = {"principals": [], "operations": [], "hosts": {ALLOW: "*", DENY: "*"}, "pattern": 3}
    i = 0
    while i < len(argv):
        arg = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else None
        if arg in ("--add", "--remove"):
            opts["action"] = arg[2:]
        elif arg == "--force":
            pass
        elif arg == "--cluster":
            opts["resource"] = (4, "kafka-cluster")
        elif arg in ("--bootstrap-server", "--allow-principal", "--deny-principal", "--allow-host",
                     "--deny-host", "--operation", "--topic", "--group", "--transactional-id",
                     "--resource-pattern-type"):
            if value is None:
                fail(f"{arg} needs a value")
            if arg == "--bootstrap-server":
                opts["bootstrap"] = value.split(",")[0]
            elif arg.endswith("-principal"):
                opts["principals"].append((value, ALLOW if arg.startswith("--allow") else DENY))
            elif arg.endswith("-host"):
                opts["hosts"][ALLOW if arg.startswith("--allow") else DENY] = value
            elif arg == "--operation":
                op = OPERATIONS.get(value.lower())
                if op is None:
                    fail(f"unknown operation {value}")
                opts["operations"].append(op)
            elif arg == "--resource-pattern-type":
                opts["pattern"] = PATTERNS.get(value.lower()) or fail(f"unknown pattern type {value}")
            else:
                opts["resource"] = (RESOURCES[arg], value)
            i += 1
        else:
            fail(f"unsupported argument {arg}")
        i += 1
    for key in ("action", "bootstrap", "resource"):
        if key not in opts:
            fail(f"missing --{key}")
    if not opts["principals"] or not opts["operations"]:
        fail("needs a principal and an operation")
    return opts


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def call(bootstrap, api_key, version, body):
    host, port = bootstrap.rsplit(":", 1)
    header = struct.pack(">hhi", api_key, version, 1) + string("kafka-acls-standin")
    payload = header + body
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", read(s, 4))[0]
        data = read(s, size)
    return data[4:]  # after the correlation id (v1 responses use header v0)


def read(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            fail("the broker closed the connection")
        out += chunk
    return out


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return v[0]

    def nstring(self):
        n = self.take(">h")
        if n < 0:
            return None
        v = self.data[self.at:self.at + n].decode()
        self.at += n
        return v


def main():
    o = parse(sys.argv[1:])
    rtype, rname = o["resource"]
    entries = [(p, perm, op) for p, perm in o["principals"] for op in o["operations"]]
    if o["action"] == "add":
        body = struct.pack(">i", len(entries))
        for principal, perm, op in entries:
            body += struct.pack(">b", rtype) + string(rname) + struct.pack(">b", o["pattern"])
            body += string(principal) + string(o["hosts"][perm]) + struct.pack(">bb", op, perm)
        r = Reader(call(o["bootstrap"], 30, 1, body))
        r.take(">i")
        for _ in range(r.take(">i")):
            code, message = r.take(">h"), r.nstring()
            if code:
                fail(f"CreateAcls error {code}: {message}")
    else:
        body = struct.pack(">i", len(entries))
        for principal, perm, op in entries:
            body += struct.pack(">b", rtype) + string(rname) + struct.pack(">b", o["pattern"])
            body += string(principal) + string(o["hosts"][perm]) + struct.pack(">bb", op, perm)
        r = Reader(call(o["bootstrap"], 31, 1, body))
        r.take(">i")
        for _ in range(r.take(">i")):
            code, message = r.take(">h"), r.nstring()
            if code:
                fail(f"DeleteAcls error {code}: {message}")
            for _ in range(r.take(">i")):
                r.take(">h"), r.nstring(), r.take(">b"), r.nstring(), r.take(">b")
                r.nstring(), r.nstring(), r.take(">b"), r.take(">b")
    print(f"{o['action']}: {len(entries)} ACL(s) on resource type {rtype} '{rname}'")


if __name__ == "__main__":
    main()
