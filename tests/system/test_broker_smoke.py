"""Smoke test of the real-broker tooling that every system test stands on: tools/kafka/broker.sh
starts a KRaft broker, the topics of DESIGN §4 exist with their partition counts and configs, a
wire-format Avro record round-trips through confluent-kafka and fastavro, and transactions work
(read_committed hides an aborted batch: exactly-once tests depend on the transaction-state log
settings of a single node). Run by ctest as `python3 test_broker_smoke.py` (label system)."""
import cxtest  # first: re-execs under .venv/bin/python when needed

import os

from confluent_kafka import Producer

from cxtest import Broker, consume_all

PARTITIONS = 3
_broker = None


def broker():
    """One broker for the whole file: starting one costs several seconds."""
    global _broker
    if _broker is None:
        _broker = Broker(partitions=PARTITIONS).start()
    return _broker


def test_topics_of_design_exist_with_partition_counts():
    b = broker()
    for name, n, _cfg in cxtest.topic_specs(PARTITIONS):
        got = b.topic_partitions(name)
        assert got == n, f"{name}: {got} partitions, expected {n}"
    assert b.topic_partitions("cx.play") == PARTITIONS
    assert b.topic_partitions("cx.campaigns") == 1
    assert b.topic_partitions("cx.partials") == 1


def test_topic_configs_compaction_and_infinite_retention():
    b = broker()
    for t in ("cx.campaigns", "cx.campaign_kpis", "cx.changelog", "cx.partials"):
        assert b.topic_config(t)["cleanup.policy"] == "compact", t
    for t in cxtest.INPUT_TOPICS:
        cfg = b.topic_config(t)
        assert cfg["retention.ms"] == "-1", f"{t}: retention.ms={cfg['retention.ms']}"
        assert cfg["cleanup.policy"] == "delete", t
    assert b.topic_config("cx.enriched")["cleanup.policy"] == "delete"


def test_topics_creation_is_idempotent():
    b = broker()
    b.create_topics()  # all exist: no error, nothing changes
    assert b.topic_partitions("cx.survey") == PARTITIONS


def test_avro_record_round_trips_with_key_and_old_timestamp():
    b = broker()
    ts_ms = 1262304000000  # 2010-01-01: old event times must not be deleted by retention
    rec = {"event_id": "e-1", "customer_id": "c-42", "ts": ts_ms, "title_id": "t-7",
           "genre": "drama", "seconds_watched": 1800, "device": None, "campaign_code": None}
    value = cxtest.encode("PlayEvent", rec)
    assert value[:5] == b"\x00\x00\x00\x00\x01"
    b.produce("cx.play", [("c-42", value, [("h", b"v")])], conf={})
    got = consume_all(b.bootstrap, "cx.play")
    assert len(got) == 1, got
    r = got[0]
    assert r.key == "c-42"
    assert r.headers == [("h", b"v")]
    sid, decoded = cxtest.decode(r.value)
    assert sid == 1
    assert decoded == rec, decoded


def test_murmur2_matches_kafka_utils_test_vectors():
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed Java ints).
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829, b"abc": 479470107,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971}
    for key, want in cases.items():
        assert cxtest.murmur2(key) == want & 0x7FFFFFFF, key


def test_producer_partitions_keys_like_the_java_client():
    b = broker()
    keys = [f"cust-{i}" for i in range(30)]
    b.produce("cx.purchase", [(k, b"x") for k in keys])
    got = consume_all(b.bootstrap, "cx.purchase")
    assert sorted(r.key for r in got) == sorted(keys)
    assert len({r.partition for r in got}) == PARTITIONS  # 30 keys reach every partition
    for r in got:
        assert r.partition == cxtest.partition_of(r.key, PARTITIONS), r


def test_read_committed_hides_aborted_transaction():
    b = broker()
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": "cxtest-smoke"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce("cx.enriched", key="c-1", value=b"aborted")
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce("cx.enriched", key="c-1", value=b"committed")
    p.commit_transaction(30)
    committed = [r.value for r in consume_all(b.bootstrap, "cx.enriched", read_committed=True)]
    assert committed == [b"committed"], committed
    everything = [r.value for r in consume_all(b.bootstrap, "cx.enriched")]
    assert sorted(everything) == [b"aborted", b"committed"], everything


def test_wait_for_returns_value_and_times_out():
    calls = []
    assert cxtest.wait_for(lambda: calls.append(1) or (len(calls) >= 3 and "done"),
                           timeout_s=5, interval_s=0.01) == "done"
    try:
        cxtest.wait_for(lambda: False, timeout_s=0.05, interval_s=0.01, what="never")
    except TimeoutError as e:
        assert "never" in str(e)
    else:
        raise AssertionError("wait_for did not time out")


def test_broker_stops_and_removes_its_data_dir():
    global _broker
    b = broker()
    _broker = None
    b.stop()
    assert not os.path.exists(b.dir), b.dir
    assert not b.running


if __name__ == "__main__":
    try:
        cxtest.main(globals())
    finally:
        if _broker is not None:
            _broker.stop()
