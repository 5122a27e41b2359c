"""System test of the disengagement triggers on a real broker: `cxstream gen -b` produces a
generated population with known churners (4-partition input topics), `cxstream run` with the
DEFAULT trigger settings consumes it to the end, and the STOPPED_STREAMING records on
cx.disengagement_triggers are judged against the generator's truth exactly as the replay scenario
does (tests/scenarios/test_trigger_quality.py: judged customers, TP/FP/FN, holiday breaks left
out): precision and recall are printed and must both be >= 0.9.

The play days of the judged set come from the same population written with `gen --output` (same
seed and options, no invalid records: the records are identical, only their encoding differs).
"""
import cxtest  # first: re-executes under the project's venv when needed

import json
import os
import shutil
import sys
import tempfile

from cxtest import Broker, CxProcess, consume_all, run_cxstream, wait_for, write_config
from confluent_kafka import Consumer, KafkaException, TopicPartition

sys.path.insert(0, os.path.join(cxtest.SOURCE_DIR, "tests", "scenarios"))
import test_trigger_quality as quality  # noqa: E402

PARTITIONS = 4
CUSTOMERS = int(os.environ.get("TRIG_CUSTOMERS", "3000"))
DAYS = int(os.environ.get("TRIG_DAYS", "180"))
SEED = os.environ.get("TRIG_SEED", "7")
DONE_TIMEOUT_S = float(os.environ.get("TRIG_TIMEOUT_S", "300"))


def log(msg):
    print(f"  {msg}", flush=True)


def _offsets(bootstrap, group, committed):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = [TopicPartition(t, p) for t in cxtest.INPUT_TOPICS for p in range(PARTITIONS)]
        if committed:
            return {(tp.topic, tp.partition): tp.offset for tp in c.committed(tps, timeout=10)}
        return {(tp.topic, tp.partition): c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
    finally:
        c.close()


def test_stopped_streaming_precision_and_recall_on_a_real_broker():
    tmp = tempfile.mkdtemp(prefix="cx-triggers-")
    ok = False
    try:
        with Broker(partitions=PARTITIONS) as b:
            gen_args = ["--customers", str(CUSTOMERS), "--days", str(DAYS), "--seed", SEED,
                        "--invalid-rate", "0"]
            truth_path = os.path.join(tmp, "truth.json")
            events_path = os.path.join(tmp, "events.jsonl")
            run_cxstream(["gen", "-b", b.bootstrap, *gen_args, "--truth", truth_path], timeout_s=600)
            run_cxstream(["gen", "--output", events_path, *gen_args], timeout_s=600)
            with open(truth_path) as f:
                truth = json.load(f)
            hw = _offsets(b.bootstrap, "cx-triggers-hw", committed=False)
            events = truth["events_valid"] + truth["events_invalid"]
            assert sum(hw.values()) == events, (sum(hw.values()), events)
            log(f"generated customers={CUSTOMERS} days={DAYS} seed={SEED} events={events}")
            # the input contract: event-time order within each partition (gen -b once reordered a
            # retried produce request behind later ones; the merge then saw those plays days late)
            for t in cxtest.INPUT_TOPICS:
                last, behind = {}, 0
                for r in consume_all(b.bootstrap, t, timeout_s=120, decode_key=False):
                    behind += r.timestamp < last.get(r.partition, 0)
                    last[r.partition] = max(last.get(r.partition, 0), r.timestamp)
                assert behind == 0, f"{t}: {behind} records behind an earlier record's ts in their partition"

            group = "cx-triggers"
            cfg = write_config(os.path.join(tmp, "run.properties"), {
                "bootstrap.servers": b.bootstrap,
                "group.id": group,
                "state.dir": os.path.join(tmp, "state"),
                "commit.interval_ms": 1000,
                "http.port": 0,
                "statistics.interval_ms": 0,
            })
            proc = CxProcess(["run", "-c", cfg], log_path=os.path.join(tmp, "run.log"))
            try:
                def done():
                    if not proc.alive():
                        raise RuntimeError(f"cxstream run exited {proc.proc.returncode}:\n{proc.log()[-4000:]}")
                    try:
                        got = _offsets(b.bootstrap, group, committed=True)
                    except KafkaException as e:  # coordinator moving or loading: ask again
                        log(f"committed offsets not available yet: {e}")
                        return False
                    return all(got[k] == v for k, v in hw.items())
                wait_for(done, timeout_s=DONE_TIMEOUT_S, interval_s=0.5, what="all input committed")
            finally:
                rc = proc.stop()
            assert rc == 0, f"cxstream run exited {rc} after SIGTERM:\n{proc.log()[-3000:]}"

            recs = consume_all(b.bootstrap, "cx.disengagement_triggers", read_committed=True, timeout_s=120)
            by_id = {}  # trigger_id is the idempotency key: a retried record counts once
            for r in recs:
                _, v = cxtest.decode(r.value)
                assert r.key == v["customer_id"], (r.key, v["customer_id"])
                by_id[v["trigger_id"]] = (v["customer_id"], v["kind"], v["ts"])
            log(f"cx.disengagement_triggers: {len(recs)} records, {len(by_id)} distinct trigger ids")
            triggers = list(by_id.values())
            ok, precision, recall = quality.judge(events_path, truth, triggers, DAYS)
            assert ok, f"precision {precision:.4f} / recall {recall:.4f} below 0.9"
    finally:
        if ok or os.environ.get("CX_KEEP_FAILED") != "1":
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    cxtest.main(globals())
