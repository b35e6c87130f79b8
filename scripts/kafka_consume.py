#!/usr/bin/env python3
"""Reads every record of a Kafka topic from the beginning and prints each as one JSON line.

An independent client (kafka-python) for lvakafkasink's tests and benchmark, so that what arrives
is checked by code that is not ours:

    {"partition": 0, "offset": 12, "key": "cam1", "value": "{\"inferences\":[...]}", "timestamp": 1700000000000}

`key` and `value` are the bytes decoded as UTF-8 (null when absent; `key_b64`/`value_b64` instead
when they are not UTF-8). Records come partition by partition, each partition in offset order.

    kafka_consume.py --bootstrap 127.0.0.1:9092 --topic lva --count 250 --timeout 30
    kafka_consume.py --bootstrap 127.0.0.1:9092 --topic lva --create-partitions 4 --count 0

Without --count it prints the topic as it is when it starts: every record up to each partition's
end offset at that moment. With --count N it waits for N records, then still prints whatever else
the topic holds by then (so a duplicate shows). --timeout bounds the whole run. Exit status: 0 when
that much came, 2 when the timeout came first, 1 on an error (the reason on stderr).
"""

import argparse
import base64
import json
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError


def text_or_b64(name, data):
    if data is None:
        return {name: None}
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {name + "_b64": base64.b64encode(data).decode("ascii")}


def create(bootstrap, topic, partitions):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ovlva-kafka-consume")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True, help="host:port of a broker")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=None, help="stop after this many records")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds, from the start")
    ap.add_argument(
        "--create-partitions",
        type=int,
        default=None,
        help="create the topic with this many partitions first (kept if it exists)",
    )
    args = ap.parse_args()
    deadline = time.monotonic() + args.timeout

    if args.create_partitions is not None:
        create(args.bootstrap, args.topic, args.create_partitions)
        if args.count == 0:
            return 0

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        client_id="ovlva-kafka-consume",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        # Wait for the topic without asking for it by name (that could auto-create it).
        partitions = None
        while time.monotonic() < deadline:
            if args.topic in consumer.topics():
                partitions = consumer.partitions_for_topic(args.topic)
                if partitions:
                    break
            time.sleep(0.2)
        if not partitions:
            print(f"topic {args.topic} does not exist after {args.timeout} s", file=sys.stderr)
            return 2 if args.count else 0
        tps = [TopicPartition(args.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        got = 0

        def poll(left):
            nonlocal got
            batch = consumer.poll(timeout_ms=int(max(0.0, min(left, 0.5)) * 1000))
            for tp in sorted(batch, key=lambda tp: tp.partition):
                for m in batch[tp]:
                    line = {"partition": m.partition, "offset": m.offset}
                    line.update(text_or_b64("key", m.key))
                    line.update(text_or_b64("value", m.value))
                    line["timestamp"] = m.timestamp
                    print(json.dumps(line), flush=True)
                    got += 1

        while args.count is not None and got < args.count and time.monotonic() < deadline:
            poll(deadline - time.monotonic())
        if args.count is not None and got < args.count:
            print(f"{got} of {args.count} records within {args.timeout} s", file=sys.stderr)
            return 2
        # Then up to the end of each partition as it is now.
        ends = consumer.end_offsets(tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() >= deadline:
                print(f"the end of {args.topic} not reached within {args.timeout} s", file=sys.stderr)
                return 2
            poll(deadline - time.monotonic())
        return 0
    finally:
        consumer.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 - the reason, for the test's failure message
        print(f"kafka_consume.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
