"""A shop service that reacts to orders: inventory (reserves the items) or analytics (counts
what sells). Each service is its own consumer group, so each sees every order once. With
--replay (analytics) it reads the whole history again in a fresh group.

    BOOTSTRAP=localhost:9092 python consumer_service.py inventory [--expect 100] [--idle 10]
"""
import argparse
import collections
import json
import os
import time

from confluent_kafka import Consumer

TOPIC = "orders"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("service")
    p.add_argument("--replay", action="store_true", help="read from the beginning in a fresh group")
    p.add_argument("--expect", type=int, default=0, help="stop after this many orders (0: run until idle)")
    p.add_argument("--idle", type=float, default=15.0, help="stop after this many seconds without an order")
    args = p.parse_args()
    group = f"shop-{args.service}" + (f"-replay-{int(time.time() * 1000)}" if args.replay else "")
    consumer = Consumer({
        "bootstrap.servers": os.environ.get("BOOTSTRAP", "localhost:9092"),
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([TOPIC])
    seen = []
    sold = collections.Counter()
    last = time.monotonic()
    while time.monotonic() - last < args.idle and not (args.expect and len(seen) >= args.expect):
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise SystemExit(f"{args.service}: {msg.error()}")
        order = json.loads(msg.value())
        seen.append(order["order_id"])
        for item in order["items"]:
            sold[item["product"]] += item["quantity"]
        consumer.commit(message=msg, asynchronous=False)
        last = time.monotonic()
    consumer.close()
    summary = {"service": args.service, "group": group, "orders": len(seen), "order_ids": sorted(seen)}
    if args.service == "analytics":
        summary["sold"] = dict(sold)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
