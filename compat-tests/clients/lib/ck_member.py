"""One confluent-kafka group member in its own process, driven by lib/compat.py's CkMember.

Running a member as a process lets a scenario crash it for real (SIGKILL: no LeaveGroup, no
final commit, no more heartbeats), which an in-process Consumer cannot model.

    python ck_member.py '{"bootstrap": ..., "group": ..., "topics": [...], "conf": {...},
                          "commit_every": 1}'

It subscribes, polls in a loop and reports everything as one JSON object per stdout line:
  {"ev": "assign"|"revoke"|"lost", "parts": [[topic, p], ...]}
                                   rebalance callbacks, with the partitions they were given
  {"ev": "assignment", "parts": [...]}   consumer.assignment() whenever it changed
  {"ev": "msg", "topic", "p", "o", "key"}   a message handed to the application ("processed")
  {"ev": "commit", "offsets": [[topic, p, offset], ...]}   a synchronous commit that succeeded
  {"ev": "commit_failed", "err": ...}
  {"ev": "error", "err": ..., "fatal": bool}
  {"ev": "closed"}                        after consumer.close() returned
Every event carries "t" (time.monotonic(), comparable across processes on Linux).

Processing rule: a message is reported ("msg") before any commit covering it; with
commit_every=N the member calls commit(asynchronous=False) after every N-th message, so at any
moment at most N-1 processed messages are uncommitted. commit_every=0 never commits.
Commands on stdin, one per line: "close" (consumer.close(), then exit 0), "commit" (commit now).
"""
import json
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException

cfg = json.loads(sys.argv[1])
out_lock = threading.Lock()


def emit(ev, **fields):
    fields["ev"] = ev
    fields["t"] = time.monotonic()
    line = json.dumps(fields)
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


commands = []
cmd_lock = threading.Lock()


def read_stdin():
    for line in sys.stdin:
        with cmd_lock:
            commands.append(line.strip())
    with cmd_lock:
        commands.append("eof")


conf = {"bootstrap.servers": cfg["bootstrap"], "group.id": cfg["group"],
        "enable.auto.commit": False, "auto.offset.reset": "earliest"}
conf.update(cfg.get("conf", {}))
consumer = Consumer(conf)


def parts(tps):
    return sorted([tp.topic, tp.partition] for tp in tps)


def on_assign(c, tps):
    emit("assign", parts=parts(tps))


def on_revoke(c, tps):
    emit("revoke", parts=parts(tps))


def on_lost(c, tps):
    emit("lost", parts=parts(tps))


consumer.subscribe(cfg["topics"], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
threading.Thread(target=read_stdin, daemon=True).start()
emit("ready")

commit_every = int(cfg.get("commit_every", 1))
processed = 0
last_assignment = None


def commit():
    try:
        res = consumer.commit(asynchronous=False)
    except KafkaException as exc:
        err = exc.args[0]
        if err.code() == KafkaError._NO_OFFSET:
            return
        emit("commit_failed", err=str(err), code=err.code())
        return
    failed = [[tp.topic, tp.partition, str(tp.error)] for tp in res or [] if tp.error]
    if failed:
        emit("commit_failed", err="per-partition errors", partitions=failed)
    emit("commit", offsets=sorted([tp.topic, tp.partition, tp.offset]
                                  for tp in res or [] if not tp.error and tp.offset >= 0))


while True:
    with cmd_lock:
        pending, commands[:] = list(commands), []
    for cmd in pending:
        if cmd == "commit":
            commit()
        elif cmd in ("close", "eof"):
            consumer.close()
            emit("closed")
            sys.exit(0)
    msg = consumer.poll(0.05)
    try:
        now = parts(consumer.assignment())
    except KafkaException:
        now = last_assignment
    if now != last_assignment:
        last_assignment = now
        emit("assignment", parts=now)
    if msg is None:
        continue
    if msg.error():
        if msg.error().code() != KafkaError._PARTITION_EOF:
            emit("error", err=str(msg.error()), code=msg.error().code(),
                 fatal=msg.error().fatal())
        continue
    key = msg.key()
    emit("msg", topic=msg.topic(), p=msg.partition(), o=msg.offset(),
         key=key.decode("utf-8", "replace") if key is not None else None)
    processed += 1
    if commit_every and processed % commit_every == 0:
        commit()
