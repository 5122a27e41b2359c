#!/usr/bin/env python3
"""mktopic.py BROKERS NAME PARTITIONS — creates a topic (retention.ms=-1) unless it exists."""
import sys

from confluent_kafka.admin import AdminClient, NewTopic

a = AdminClient({"bootstrap.servers": sys.argv[1]})
fs = a.create_topics([NewTopic(sys.argv[2], int(sys.argv[3]), 1, config={"retention.ms": "-1"})])
for f in fs.values():
    try:
        f.result()
    except Exception as e:  # noqa: BLE001 - TOPIC_ALREADY_EXISTS is fine
        if "TOPIC_ALREADY_EXISTS" not in str(e):
            raise
