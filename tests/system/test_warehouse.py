#!/usr/bin/env python3
"""Warehouse feed on a real broker: `cxstream gen -b` produces a population to the input topics,
`cxstream run` consumes it to the end with cx.enriched on (the default), and an independent Python
consumer — confluent-kafka to read, fastavro to decode, nothing from cxstream's own code or test
helpers for the decoding — reads cx.enriched from the beginning (read_committed) and decodes every
record with the shipped `.avsc` files alone: the Schema Registry wire format (magic 0x00, 4-byte
big-endian schema id) and schemas/ids.json to map the id to its file.

Checks: every record decodes with schema id 14 (EnrichedEvent); the Kafka key is the customer_id;
the distinct event ids equal the accepted input events (every generated event: no invalid records
are generated, and gen writes no duplicates), and the record count equals them too (at-least-once
repeats are counted and must be absent after a clean run); for a sample of events the input
fields (type, customer, ts and the type's own fields) are the ones the generator produced (the
same population written with `gen --output`); the enrichment is present (segment on a customer's
events after their first transaction, nps_last after a survey).
"""
import cxtest  # first: re-executes under the project's venv when needed (Broker, processes only)

import datetime
import io
import json
import os
import random
import shutil
import struct
import tempfile

import fastavro
from confluent_kafka import Consumer, TopicPartition

from cxtest import Broker, CxProcess, run_cxstream, wait_for, write_config

PARTITIONS = 4
CUSTOMERS = int(os.environ.get("WH_CUSTOMERS", "400"))
DAYS = int(os.environ.get("WH_DAYS", "120"))
SEED = os.environ.get("WH_SEED", "11")
SAMPLE = 2000
INPUTS = ["cx.play", "cx.purchase", "cx.email_send", "cx.survey"]


def log(msg):
    print(f"  {msg}", flush=True)


# ---- the independent decoder: .avsc files + ids.json, fastavro ---------------------------------

def load_schemas(schemas_dir):
    with open(os.path.join(schemas_dir, "ids.json")) as f:
        ids = json.load(f)
    out = {}
    for sid, name in ids.items():
        with open(os.path.join(schemas_dir, name)) as f:
            out[int(sid)] = fastavro.parse_schema(json.load(f))
    return out


def decode(schemas, value):
    assert len(value) >= 5 and value[0] == 0, "not the Schema Registry wire format: %r" % value[:8]
    (sid,) = struct.unpack(">I", value[1:5])
    assert sid in schemas, "unknown schema id %d" % sid
    buf = io.BytesIO(value[5:])
    rec = fastavro.schemaless_reader(buf, schemas[sid])
    assert buf.tell() == len(value) - 5, "trailing bytes after the record"
    return sid, rec


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def millis(v):
    """fastavro gives timestamp-millis as an aware datetime; the input files carry epoch ms."""
    if isinstance(v, datetime.datetime):
        return (v - EPOCH) // datetime.timedelta(milliseconds=1)
    return v


def read_topic(bootstrap, topic, timeout_s=120.0):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "warehouse-%d" % os.getpid(),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed"})
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        parts = sorted(meta.partitions)
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        pos = {p: 0 for p in parts}
        out = []

        def done():
            return all(pos[p] >= ends[p] for p in parts)
        import time
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, "timed out reading %s (%r of %r)" % (topic, pos, ends)
            for m in c.consume(1000, timeout=1.0):
                if m.error():
                    continue
                pos[m.partition()] = m.offset() + 1
                out.append((m.key(), m.value()))
        return out
    finally:
        c.close()


def committed_all(bootstrap, group, hw):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(t, p) for (t, p) in hw], timeout=10)
        return all(tp.offset == hw[(tp.topic, tp.partition)] for tp in got)
    finally:
        c.close()


def high_watermarks(bootstrap):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wh-hw"})
    try:
        return {(t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                for t in INPUTS for p in range(PARTITIONS)}
    finally:
        c.close()


FIELDS = {
    "play": ["title_id", "genre", "seconds_watched", "device", "campaign_code"],
    "purchase": ["title_id", "kind", "amount_minor", "currency", "campaign_code"],
    "email_send": ["campaign_id", "group", "campaign_code", "channel"],
    "survey": ["survey_id", "score", "touchpoint", "comment"],
}


def test_enriched_topic_decodes_with_the_avsc_files_and_matches_the_input():
    tmp = tempfile.mkdtemp(prefix="cx-warehouse-")
    ok = False
    try:
        with Broker(partitions=PARTITIONS) as b:
            gen_args = ["--customers", str(CUSTOMERS), "--days", str(DAYS), "--seed", SEED, "--invalid-rate", "0"]
            events_path = os.path.join(tmp, "events.jsonl")
            run_cxstream(["gen", "-b", b.bootstrap, *gen_args], timeout_s=600)
            run_cxstream(["gen", "--output", events_path, *gen_args], timeout_s=600)
            produced = {}
            with open(events_path) as f:
                for line in f:
                    e = json.loads(line)
                    if e.get("event_type") in FIELDS:
                        produced[e["event_id"]] = e
            hw = high_watermarks(b.bootstrap)
            assert sum(hw.values()) == len(produced), (sum(hw.values()), len(produced))
            log(f"generated {len(produced)} input events ({CUSTOMERS} customers, {DAYS} days)")

            group = "cx-warehouse"
            cfg = write_config(os.path.join(tmp, "run.properties"), {
                "bootstrap.servers": b.bootstrap, "group.id": group, "state.dir": os.path.join(tmp, "state"),
                "commit.interval_ms": 1000, "http.port": 0, "statistics.interval_ms": 0})
            proc = CxProcess(["run", "-c", cfg], log_path=os.path.join(tmp, "run.log"))
            try:
                def done():
                    if not proc.alive():
                        raise RuntimeError(f"cxstream run exited {proc.proc.returncode}:\n{proc.log()[-4000:]}")
                    return committed_all(b.bootstrap, group, hw)
                wait_for(done, timeout_s=300, interval_s=0.5, what="all input committed")
            finally:
                rc = proc.stop()
            assert rc == 0, f"cxstream run exited {rc}:\n{proc.log()[-3000:]}"

            schemas = load_schemas(os.path.join(cxtest.SOURCE_DIR, "schemas"))
            recs = read_topic(b.bootstrap, "cx.enriched")
            got = {}
            for key, value in recs:
                sid, r = decode(schemas, value)
                assert sid == 14, "cx.enriched record with schema id %d" % sid
                assert key.decode() == r["customer_id"], (key, r["customer_id"])
                got[r["event_id"]] = r
            log(f"cx.enriched: {len(recs)} records, {len(got)} distinct event ids, all decoded with the .avsc files")
            assert set(got) == set(produced), (len(set(produced) - set(got)), len(set(got) - set(produced)))
            assert len(recs) == len(produced), "repeats after a clean run: %d records for %d events" % (
                len(recs), len(produced))

            rnd = random.Random(5)
            sample = rnd.sample(sorted(produced), min(SAMPLE, len(produced)))
            checked = 0
            for eid in sample:
                e, r = produced[eid], got[eid]
                assert r["event_type"] == e["event_type"], (eid, r["event_type"], e["event_type"])
                assert r["customer_id"] == e["customer_id"] and millis(r["ts"]) == e["ts"], (eid, r, e)
                checked += 2
                for k in FIELDS[e["event_type"]]:
                    want = e.get(k)
                    if k == "channel" and want is None:
                        want = "EMAIL"  # the schema's default channel
                    assert r[k] == want, "%s %s: enriched %r, produced %r" % (eid, k, r[k], want)
                    checked += 1
            # enrichment: segment once the customer has transacted, nps_last once they answered
            by_customer = {}
            for r in sorted(got.values(), key=lambda r: (r["customer_id"], r["ts"])):
                by_customer.setdefault(r["customer_id"], []).append(r)
            with_segment = sum(1 for r in got.values() if r["segment"] is not None)
            surveys = [r for r in got.values() if r["event_type"] == "survey"]
            assert surveys and all(r["nps_last"] is not None for r in surveys), "survey without nps_last"
            purchases = [r for r in got.values() if r["event_type"] == "purchase"]
            assert purchases and all(r["segment"] is not None for r in purchases), "purchase without a segment"
            log(f"sample: {len(sample)} events, {checked} fields equal to the produced input; "
                f"{with_segment} events carry a segment, {len(surveys)} surveys carry nps_last")
            ok = True
    finally:
        if ok or os.environ.get("CX_KEEP_FAILED") != "1":
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    cxtest.main(globals())
