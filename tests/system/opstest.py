"""Helpers shared by the operations system tests (test_restore, test_scaleout, test_exactly_once,
test_metrics_lag): one generated data set on a private broker, processor configs, waiting for a
consumer group to reach the input high watermarks, state dumps and the restore log lines."""
import cxtest  # first: re-execs under .venv/bin/python when needed

import json
import os
import re
import shutil
import tempfile
import time
import urllib.request

from confluent_kafka import Consumer, KafkaException, TopicPartition

from cxtest import Broker, CxProcess, run_cxstream, wait_for, write_config

PARTITIONS = 4
# Output and internal topics a test run may rename with a prefix (topic.<name>=<prefix>.<name>), so
# several runs on one broker never share a changelog or partials.
OUT_TOPICS = ["segment_changes", "disengagement_triggers", "campaign_responses", "campaign_kpis", "enriched",
              "dlq", "changelog", "partials"]


def log(msg):
    print(f"  {msg}", flush=True)


def generate(customers, days, seed=11, partitions=PARTITIONS, extra=()):
    """Start a broker, generate events; returns dict(broker, tmp, truth, hw, events)."""
    tmp = tempfile.mkdtemp(prefix="cx-ops-")
    b = Broker(partitions=partitions).start()
    truth_path = os.path.join(tmp, "truth.json")
    t0 = time.monotonic()
    run_cxstream(["gen", "-b", b.bootstrap, "--customers", str(customers), "--days", str(days),
                  "--seed", str(seed), "--truth", truth_path, *extra], timeout_s=600)
    with open(truth_path) as f:
        truth = json.load(f)
    hw = high_watermarks(b.bootstrap, partitions)
    log(f"generated customers={customers} days={days} input records={sum(hw.values())} "
        f"in {time.monotonic() - t0:.1f} s")
    return {"broker": b, "tmp": tmp, "truth": truth, "hw": hw, "events": sum(hw.values()),
            "partitions": partitions}


def teardown(env):
    """Stops the broker of a generate()d environment and removes its temp dir (kept when
    CX_KEEP_FAILED=1)."""
    if "broker" in env:
        env["broker"].stop()
    if "tmp" in env and os.environ.get("CX_KEEP_FAILED") != "1":
        shutil.rmtree(env["tmp"], ignore_errors=True)
    env.clear()


def _consumer(bootstrap, group="cx-ops-admin"):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})


def high_watermarks(bootstrap, partitions=PARTITIONS, topics=None):
    c = _consumer(bootstrap)
    try:
        return {(t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                for t in (topics or cxtest.INPUT_TOPICS) for p in range(partitions)}
    finally:
        c.close()


def committed(bootstrap, group, partitions=PARTITIONS):
    """{(topic, partition): committed offset} of the group on the inputs (retried while the group
    coordinator moves or loads)."""
    tps = [TopicPartition(t, p) for t in cxtest.INPUT_TOPICS for p in range(partitions)]
    for attempt in range(20):
        c = _consumer(bootstrap, group)
        try:
            return {(tp.topic, tp.partition): tp.offset for tp in c.committed(tps, timeout=10)}
        except KafkaException:
            if attempt == 19:
                raise
            time.sleep(0.5)
        finally:
            c.close()


def committed_total(bootstrap, group, partitions=PARTITIONS):
    return sum(max(o, 0) for o in committed(bootstrap, group, partitions).values())


def wait_done(env, group, procs, timeout_s, what=None):
    """Until the group's committed offsets equal the input high watermarks; every process in
    `procs` must stay alive meanwhile."""
    b, hw = env["broker"], env["hw"]

    def done():
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"cxstream exited {p.proc.returncode}:\n{p.log()[-4000:]}")
        got = committed(b.bootstrap, group, env["partitions"])
        return all(got[k] == v for k, v in hw.items())
    try:
        wait_for(done, timeout_s=timeout_s, interval_s=0.5, what=what or f"group {group} at the high watermarks")
    except TimeoutError:
        got = committed(b.bootstrap, group, env["partitions"])
        behind = {f"{t}[{p}]": (got[(t, p)], v) for (t, p), v in hw.items() if got[(t, p)] != v}
        raise TimeoutError(f"group {group} behind (committed, high watermark): {behind}\n" +
                           "\n".join(p.log()[-2500:] for p in procs))


def config(env, name, group, extra=None):
    """A properties file for instance `name` of `group`; state in <tmp>/state-<name>."""
    props = {
        "bootstrap.servers": env["broker"].bootstrap,
        "group.id": group,
        "state.dir": os.path.join(env["tmp"], f"state-{name}"),
        "commit.interval_ms": 1000,
        "http.port": 0,
        "log.level": "info",
        "statistics.interval_ms": 0,
        "kafka.session.timeout.ms": 6000,
        "kafka.heartbeat.interval.ms": 1000,
    }
    props.update(extra or {})
    path = os.path.join(env["tmp"], f"{name}.properties")
    write_config(path, props)
    return path


def start(env, cfg_path, name):
    return CxProcess(["run", "-c", cfg_path], log_path=os.path.join(env["tmp"], f"run-{name}.log"))


def dump_state(cfg_path):
    """{customer_id: profile} from `cxstream state dump` (the processor must be stopped)."""
    out = cfg_path + ".profiles.jsonl"
    run_cxstream(["state", "dump", "-c", cfg_path, "--output", out], timeout_s=300)
    with open(out) as f:
        return {p["customer_id"]: p for p in (json.loads(line) for line in f)}


def merged_dump(cfg_paths):
    """The union of several instances' dumps; a customer present in two must be identical."""
    merged = {}
    for path in cfg_paths:
        for cid, prof in dump_state(path).items():
            if cid in merged and merged[cid] != prof:
                raise AssertionError(f"{cid} differs between state dirs:\n{merged[cid]}\n{prof}")
            merged[cid] = prof
    return merged


def final_partitions(cfg_path, hw):
    """Partitions whose stored next offsets equal the input high watermarks in this state dir."""
    r = cxtest.run_cxstream(["state", "offsets", "-c", cfg_path])
    done = set()
    for row in (json.loads(line) for line in r.stdout.splitlines()):
        if all((row["next_offsets"][t] or 0) == hw[(t, row["partition"])] for t in cxtest.INPUT_TOPICS):
            done.add(row["partition"])
    return done


def final_state(cfg_paths, hw, partitions):
    """Merged state: each customer from every state dir whose copy of its partition is final."""
    merged, owners = {}, {}
    for path in cfg_paths:
        parts = final_partitions(path, hw)
        for cid, prof in dump_state(path).items():
            p = cxtest.partition_of(cid, partitions)
            if p not in parts:
                continue
            if cid in merged:
                assert merged[cid] == prof, f"{cid}: final copies differ\n{merged[cid]}\n{prof}"
            merged[cid] = prof
            owners.setdefault(p, set()).add(os.path.basename(path))
    assert sorted(owners) == list(range(partitions)), f"partitions with a final copy: {owners}"
    return merged, owners


def diff_states(got, want, limit=5):
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = [c for c in want if c in got and got[c] != want[c]]
    msgs = []
    if missing:
        msgs.append(f"{len(missing)} missing, e.g. {missing[:limit]}")
    if extra:
        msgs.append(f"{len(extra)} extra, e.g. {extra[:limit]}")
    if differ:
        c = differ[0]
        fields = {k: (got[c].get(k), want[c].get(k)) for k in want[c] if got[c].get(k) != want[c].get(k)}
        msgs.append(f"{len(differ)} differ, e.g. {c}: (got, want) {fields}")
    return "; ".join(msgs)


RESTORED = re.compile(r"restored partition=(\d+) mode=(\w+) from=(-?\d+) to=(-?\d+) records=(\d+) "
                      r"seconds=([\d.]+) records_per_s=(\d+)")


def restores(log_text):
    """[(partition, mode, from, to, records, seconds)] of the log's restore lines."""
    return [(int(m[1]), m[2], int(m[3]), int(m[4]), int(m[5]), float(m[6]))
            for m in RESTORED.finditer(log_text)]


def http_json(port, path, timeout_s=5.0):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout_s) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None  # not listening (yet)


def http_text(port, path, timeout_s=5.0):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout_s) as r:
        return r.read().decode()


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
