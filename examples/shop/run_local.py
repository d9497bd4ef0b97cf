"""Runs the shop against a local gregor binary configured exactly as docker-compose.yml
configures the broker service: the compose file's own KAFKA_* environment, with the
container host name `kafka` mapped to 127.0.0.1 and each listener's port replaced by a free
one (nothing else changes; `localhost` is 127.0.0.1 too, as Node may try ::1 first). The
Python services use the internal listener (what the other
containers use, `kafka:29092` in compose), the Node services the host one (`localhost:9092`).

    python run_local.py [--count 100]     # prints each service's summary, one JSON line each

`run_orders_through_the_shop` is also the compatibility test's entry point.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def compose_broker_env(path=os.path.join(HERE, "docker-compose.yml"), service="kafka"):
    """The `environment` list of one service (the `- KEY=value` form this file uses)."""
    env, in_service, in_env = {}, False, False
    for line in open(path):
        if re.match(r"^  [A-Za-z0-9_-]+:\s*$", line):
            in_service, in_env = line.strip() == f"{service}:", False
        elif in_service and re.match(r"^    environment:\s*$", line):
            in_env = True
        elif in_service and in_env and re.match(r"^      - ", line):
            key, _, value = line.strip()[2:].partition("=")
            env[key] = value
        elif in_service and re.match(r"^    \S", line):
            in_env = False
    return env


# Ports outside the ephemeral range, so that no outgoing connection takes one before the broker
# binds it (see that module).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "compat-tests", "clients", "lib"))
from ports import free_port  # noqa: E402,F401  (also used by the compat scenarios)


def localise(env, hosts="kafka|localhost"):
    """The compose environment with the container host names `hosts` (a regex) as 127.0.0.1
    and free ports; also returns each listener's advertised address here."""
    listeners = dict(re.findall(r"([A-Z_]+)://[^:,]*:(\d+)", env["KAFKA_LISTENERS"]))
    ports = {old: str(free_port()) for old in listeners.values()}

    def rewrite(value):
        # (localhost too: Node may try ::1 first, where the broker's IPv4 wildcard is not.)
        value = re.sub(rf"(?<=[/@])({hosts})(?=:)", "127.0.0.1", value)
        return re.sub(r"(?<=:)(\d+)\b", lambda m: ports.get(m.group(1), m.group(1)), value)

    out = dict(env)
    for key in ("KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS", "KAFKA_CONTROLLER_QUORUM_VOTERS"):
        if key in out:
            out[key] = rewrite(out[key])
    return out, advertised_listeners(out)


def start_gregor(binary, env, data_dir, timeout_s=30, http_listen="127.0.0.1:0"):
    """Starts the broker with `env` (no flags: flags would replace the listeners) and waits
    until every advertised listener accepts. Its HTTP endpoint (metrics) is on `http_listen`."""
    env = dict(env, KAFKA_LOG_DIRS=data_dir, GREGOR__SERVER__HTTP_LISTEN=http_listen)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "GREGOR__"))}
    log = open(os.path.join(data_dir + ".log"), "a")  # a restarted broker adds to its log
    proc = subprocess.Popen([binary], env={**base, **env}, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    for addr in advertised_listeners(env).values():
        host, port = addr.rsplit(":", 1)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gregor exited with {proc.returncode}: {open(data_dir + '.log').read()}")
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gregor did not listen on {addr}")
                time.sleep(0.05)
    return proc


def advertised_listeners(env):
    """{listener name: advertised HOST:PORT}."""
    return dict(re.findall(r"([A-Z_]+)://([^,]+)", env["KAFKA_ADVERTISED_LISTENERS"]))


def node_path():
    cache = os.environ.get("GREGOR_CACHE", os.path.expanduser("~/.cache/gregor"))
    return os.path.join(cache, "node", "node_modules")


def run_orders_through_the_shop(count, internal, host, idle_s=10.0):
    """Publishes `count` orders through `internal`, then runs the four services (Python on
    `internal`, Node on `host`) and the analytics replay. Returns their summaries by name."""
    py, node = sys.executable, shutil.which("node") or "node"
    env = dict(os.environ, NODE_PATH=node_path())
    orders = subprocess.run([py, os.path.join(HERE, "order_service.py"), "--count", str(count)],
                            env=dict(env, BOOTSTRAP=internal), capture_output=True, text=True, timeout=120)
    if orders.returncode != 0:
        raise RuntimeError(f"order service failed: {orders.stdout}{orders.stderr}")
    services = {
        "inventory": ([py, os.path.join(HERE, "consumer_service.py"), "inventory"], internal),
        "analytics": ([py, os.path.join(HERE, "consumer_service.py"), "analytics", "--replay"], internal),
        "payment": ([node, os.path.join(HERE, "consumer_service.js"), "payment"], host),
        "email": ([node, os.path.join(HERE, "consumer_service.js"), "email"], host),
    }
    running = {}
    for name, (cmd, bootstrap) in services.items():
        extra = ["--expect", str(count), "--idle", str(idle_s)] if cmd[0] == py else [str(count), str(idle_s)]
        running[name] = subprocess.Popen(cmd + extra, env=dict(env, BOOTSTRAP=bootstrap),
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    summaries = {"orders": json.loads(orders.stdout.strip().splitlines()[-1])}
    for name, proc in running.items():
        out, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed ({proc.returncode}): {out}{err}")
        summaries[name] = json.loads(out.strip().splitlines()[-1])
    return summaries


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--gregor", default=os.environ.get("GREGOR_BIN", os.path.join(REPO, "target", "release", "gregor")))
    args = p.parse_args()
    env, advertised = localise(compose_broker_env())
    work = tempfile.mkdtemp(prefix="gregor-shop-")
    proc = start_gregor(args.gregor, env, os.path.join(work, "data"))
    try:
        summaries = run_orders_through_the_shop(args.count, advertised["PLAINTEXT"], advertised["PLAINTEXT_HOST"])
        for s in summaries.values():
            s.pop("order_ids", None)
            print(json.dumps(s))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
