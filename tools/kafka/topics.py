#!/usr/bin/env python3
"""The topics of DESIGN §4 and their creation on a real broker.

The single source of the topic layout for tools/kafka/broker.sh (`topics [P]`) and
tests/system/cxtest.py. Importable (`topic_specs`, `create_topics`) and runnable:

    topics.py --bootstrap HOST:PORT [--partitions P]   create every topic (existing ones are kept)
    topics.py --print-spec [--partitions P]             one line per topic: name partitions k=v,...

Creation uses confluent-kafka's AdminClient (one request for all topics); --print-spec needs no
third-party package, so broker.sh can fall back to Kafka's TopicCommand without the venv.
"""
import argparse
import sys

INPUT_TOPICS = ("cx.play", "cx.purchase", "cx.email_send", "cx.survey")
OUTPUT_TOPICS = ("cx.segment_changes", "cx.disengagement_triggers", "cx.campaign_responses",
                 "cx.campaign_kpis", "cx.enriched", "cx.dlq")

# Record timestamps are event times (possibly years old): history must never expire by age.
_KEEP = {"retention.ms": "-1"}
_COMPACT = {"cleanup.policy": "compact"}


def topic_specs(partitions=4):
    """[(name, partition_count, {config})] for every topic of DESIGN §4, in a stable order."""
    p = int(partitions)
    specs = [(t, p, dict(_KEEP)) for t in INPUT_TOPICS]
    specs.append(("cx.campaigns", 1, dict(_COMPACT, **_KEEP)))
    for t in OUTPUT_TOPICS:
        specs.append((t, p, dict(_COMPACT) if t == "cx.campaign_kpis" else {}))
    specs.append(("cx.changelog", p, dict(_COMPACT)))
    specs.append(("cx.partials", 1, dict(_COMPACT)))
    return specs


def create_topics(bootstrap, specs, timeout_s=30.0):
    """Create the topics in `specs`; ones that already exist are left as they are.

    Returns the list of names actually created. Raises RuntimeError naming every failure."""
    from confluent_kafka.admin import AdminClient, NewTopic
    from confluent_kafka import KafkaError

    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(name, num_partitions=n, replication_factor=1, config=cfg)
           for name, n, cfg in specs]
    futures = admin.create_topics(new, operation_timeout=timeout_s, request_timeout=timeout_s)
    created, errors = [], []
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
            created.append(name)
        except Exception as e:  # KafkaException wrapping a KafkaError
            err = e.args[0] if e.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            errors.append(f"{name}: {e}")
    if errors:
        raise RuntimeError("topic creation failed: " + "; ".join(errors))
    return created


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", help="HOST:PORT of the broker")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--print-spec", action="store_true")
    args = ap.parse_args(argv)
    if args.partitions < 1:
        ap.error("--partitions must be >= 1")
    specs = topic_specs(args.partitions)
    if args.print_spec:
        for name, n, cfg in specs:
            print(name, n, ",".join(f"{k}={v}" for k, v in sorted(cfg.items())) or "-")
        return 0
    if not args.bootstrap:
        ap.error("--bootstrap is required")
    try:
        created = create_topics(args.bootstrap, specs)
    except RuntimeError as e:
        print(f"topics: {e}", file=sys.stderr)
        return 1
    print(f"topics: {len(specs)} topics ready ({len(created)} created) on {args.bootstrap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
