"""The order service: publishes one `order_created` event per order to the `orders` topic,
keyed by customer id so that each customer's orders stay in order (one partition per key).

    BOOTSTRAP=localhost:9092 python order_service.py --count 100
"""
import argparse
import json
import os
import random
import sys

from confluent_kafka import Producer

TOPIC = "orders"
PRODUCTS = ["kettle", "teapot", "mug", "tea 250g", "strainer"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--first", type=int, default=1, help="first order id")
    args = p.parse_args()
    producer = Producer({
        "bootstrap.servers": os.environ.get("BOOTSTRAP", "localhost:9092"),
        "enable.idempotence": True,  # retries never duplicate an order
        "acks": "all",
    })
    failed = []

    def delivered(err, msg):
        if err is not None:
            failed.append(str(err))

    rng = random.Random(7)
    for order_id in range(args.first, args.first + args.count):
        customer = f"customer-{rng.randrange(20)}"
        items = [{"product": rng.choice(PRODUCTS), "quantity": rng.randrange(1, 4)} for _ in range(rng.randrange(1, 4))]
        event = {"type": "order_created", "order_id": order_id, "customer_id": customer, "items": items}
        producer.produce(TOPIC, key=customer, value=json.dumps(event), on_delivery=delivered)
        producer.poll(0)
    producer.flush(60)
    print(json.dumps({"service": "orders", "sent": args.count, "failed": len(failed)}), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
