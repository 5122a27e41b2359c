#!/usr/bin/env python3
"""lag.py — waits until consumer group GROUP has committed, on every partition of TOPICS, the
partition's end offset (consumer lag zero: the group's processor commits only after its outputs are
acknowledged), then prints the seconds since --since (epoch seconds, default now).

Usage: lag.py BROKERS GROUP --since T [--timeout S] TOPIC...
"""
import argparse
import sys
import time

from confluent_kafka import Consumer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("brokers")
    ap.add_argument("group")
    ap.add_argument("topics", nargs="+")
    ap.add_argument("--since", type=float, default=None)
    ap.add_argument("--timeout", type=float, default=1200)
    a = ap.parse_args()
    since = a.since or time.time()
    c = Consumer({"bootstrap.servers": a.brokers, "group.id": a.group, "enable.auto.commit": False})
    parts = []
    for t in a.topics:
        md = c.list_topics(t, timeout=10).topics[t]
        parts += [TopicPartition(t, p) for p in md.partitions]
    ends = {(tp.topic, tp.partition): c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        done = True
        for tp in c.committed(parts, timeout=10):
            if ends[(tp.topic, tp.partition)] > 0 and tp.offset < ends[(tp.topic, tp.partition)]:
                done = False
                break
        if done:
            print("%.3f" % (time.time() - since))
            c.close()
            return 0
        time.sleep(0.05)
    sys.stderr.write("lag.py: timeout\n")
    c.close()
    return 1


if __name__ == "__main__":
    sys.exit(main())
