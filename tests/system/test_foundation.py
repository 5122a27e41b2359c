"""System test of the foundation on a real broker: `cxstream gen` produces about a million events
(4-partition input topics, retention -1), `cxstream run` consumes them to the end, and the state it
leaves (read back with `cxstream state dump` after SIGTERM) must agree exactly with the
generator's truth: per customer plays_total, purchases_total, revenue_total_minor; and cx.dlq must
hold exactly the truth's invalid records per `cx.error` code. Then the crash test: a fresh state
dir and group, kill -9 about half-way, restart on the same state dir, and the final state must be
exact again (state and offsets are written in one batch, so nothing is counted twice); repeated
cx.segment_changes records (outputs produced after the last durable flush) must be exact
duplicates, and their number is reported.

Scale: CX_FOUNDATION_CUSTOMERS / CX_FOUNDATION_DAYS (default 16000 x 90, about 1.0 M events).
Run by ctest as `python3 test_foundation.py` (label system); prints events, wall time, events/s
and the processor's peak RSS (VmHWM)."""
import cxtest  # first: re-execs under .venv/bin/python when needed

import json
import os
import shutil
import socket
import tempfile
import time
from collections import Counter

from confluent_kafka import Consumer, TopicPartition

from cxtest import Broker, CxProcess, consume_all, run_cxstream, wait_for, write_config

PARTITIONS = 4
CUSTOMERS = int(os.environ.get("CX_FOUNDATION_CUSTOMERS", "16000"))
DAYS = int(os.environ.get("CX_FOUNDATION_DAYS", "90"))
SEED = 7
DONE_TIMEOUT_S = float(os.environ.get("CX_FOUNDATION_TIMEOUT_S", "240"))

_env = {}  # shared across the two tests: broker, truth, generated counts, temp dir


def log(msg):
    print(f"  {msg}", flush=True)


def setup():
    """One broker and one generated data set for both tests (generation is the slow part)."""
    if _env:
        return _env
    tmp = tempfile.mkdtemp(prefix="cx-foundation-")
    b = Broker(partitions=PARTITIONS).start()
    _env.update(broker=b, tmp=tmp)
    for t in cxtest.INPUT_TOPICS:
        cfg = b.topic_config(t)
        assert cfg["retention.ms"] == "-1", f"{t}: retention.ms={cfg['retention.ms']}"
    truth_path = os.path.join(tmp, "truth.json")
    t0 = time.monotonic()
    run_cxstream(["gen", "-b", b.bootstrap, "--customers", str(CUSTOMERS), "--days", str(DAYS),
                  "--seed", str(SEED), "--truth", truth_path], timeout_s=600)
    gen_s = time.monotonic() - t0
    with open(truth_path) as f:
        truth = json.load(f)
    hw = high_watermarks(b.bootstrap)
    records = sum(hw.values())
    events = truth["events_valid"] + truth["events_invalid"]
    log(f"generated customers={CUSTOMERS} days={DAYS} events={events} (valid {truth['events_valid']}, "
        f"invalid {truth['events_invalid']}) campaigns={truth['campaign_records']} in {gen_s:.1f} s; "
        f"input records on the broker: {records}")
    assert records == events, (records, events)
    _env.update(truth=truth, hw=hw, events=events)
    return _env


def teardown():
    if "broker" in _env:
        _env["broker"].stop()
    if "tmp" in _env and os.environ.get("CX_KEEP_FAILED") != "1":
        shutil.rmtree(_env["tmp"], ignore_errors=True)
    _env.clear()


# --- offsets --------------------------------------------------------------------------------------

def _admin_consumer(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})


def high_watermarks(bootstrap):
    """{(topic, partition): high watermark} of the four input topics."""
    c = _admin_consumer(bootstrap, "cx-foundation-watermarks")
    try:
        return {(t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                for t in cxtest.INPUT_TOPICS for p in range(PARTITIONS)}
    finally:
        c.close()


def end_offsets(bootstrap, topic):
    c = _admin_consumer(bootstrap, "cx-foundation-watermarks")
    try:
        md = c.list_topics(topic, timeout=10)
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in md.topics[topic].partitions}
    finally:
        c.close()


def committed(bootstrap, group):
    """{(topic, partition): committed offset (negative: none)} of the group on the inputs."""
    c = _admin_consumer(bootstrap, group)
    try:
        tps = [TopicPartition(t, p) for t in cxtest.INPUT_TOPICS for p in range(PARTITIONS)]
        return {(tp.topic, tp.partition): tp.offset for tp in c.committed(tps, timeout=10)}
    finally:
        c.close()


def committed_total(bootstrap, group):
    return sum(max(o, 0) for o in committed(bootstrap, group).values())


def wait_done(bootstrap, group, hw, proc, timeout_s):
    """Poll until the group's committed offsets equal the high watermarks of every input."""
    def done():
        if not proc.alive():
            raise RuntimeError(f"cxstream run exited {proc.proc.returncode}:\n{proc.log()[-4000:]}")
        got = committed(bootstrap, group)
        return all(got[k] == v for k, v in hw.items())
    try:
        wait_for(done, timeout_s=timeout_s, interval_s=0.5, what=f"group {group} at the high watermarks")
    except TimeoutError:
        got = committed(bootstrap, group)
        behind = {f"{t}[{p}]": (got[(t, p)], v) for (t, p), v in hw.items() if got[(t, p)] != v}
        raise TimeoutError(f"group {group} behind (committed, high watermark): {behind}\n"
                           f"{proc.log()[-3000:]}")


def cpu_s(pid):
    """User + system CPU seconds of a live process (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# --- the processor --------------------------------------------------------------------------------

def config(env, name):
    state = os.path.join(env["tmp"], f"state-{name}")
    path = os.path.join(env["tmp"], f"{name}.properties")
    write_config(path, {
        "bootstrap.servers": env["broker"].bootstrap,
        "group.id": f"cx-foundation-{name}",
        "state.dir": state,
        "commit.interval_ms": 1000,
        "http.port": 0,
        "log.level": "info",
        "statistics.interval_ms": 0,
        # after a kill -9 the dead member holds its partitions until its session times out: keep
        # that short so the restart does not wait the default 45 s
        "kafka.session.timeout.ms": 6000,
        # each run is a separate application on the shared broker: its own changelog and partials
        # (restoring another group's changelog would import that group's state and offsets)
        "topic.changelog": f"cx.changelog.{name}",
        "topic.partials": f"cx.partials.{name}",
    })
    return path, f"cx-foundation-{name}"


def start_run(cfg_path, name, env):
    return CxProcess(["run", "-c", cfg_path], log_path=os.path.join(env["tmp"], f"run-{name}.log"))


def dump_state(cfg_path):
    out = cfg_path + ".profiles.jsonl"
    run_cxstream(["state", "dump", "-c", cfg_path, "--output", out], timeout_s=300)
    with open(out) as f:
        profiles = [json.loads(line) for line in f]
    ids = [p["customer_id"] for p in profiles]
    assert ids == sorted(ids), "state dump is not sorted by customer_id"
    return {p["customer_id"]: p for p in profiles}


def check_state_against_truth(profiles, truth):
    """Exact per-customer totals: every customer of the truth with a valid event, nobody else."""
    expected = {cid: c for cid, c in truth["customers"].items()
                if c["plays"] + c["purchases"] + c["surveys"] + c["email_sends"] > 0}
    missing = sorted(set(expected) - set(profiles))
    extra = sorted(set(profiles) - set(expected))
    assert not missing, f"{len(missing)} customers missing from the state, e.g. {missing[:5]}"
    assert not extra, f"{len(extra)} customers in the state but not in the truth, e.g. {extra[:5]}"
    bad = []
    for cid, c in expected.items():
        p = profiles[cid]
        got = (p["plays_total"], p["purchases_total"], p["revenue_total_minor"])
        want = (c["plays"], c["purchases"], c["revenue_minor"])
        if got != want:
            bad.append((cid, got, want))
    assert not bad, f"{len(bad)} customers differ (plays, purchases, revenue) got vs truth: {bad[:5]}"
    return len(expected)


def offsets_match_watermarks(cfg_path, hw):
    """`cxstream state offsets`: the stored next offsets equal the high watermarks."""
    r = run_cxstream(["state", "offsets", "-c", cfg_path])
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(row["partition"] for row in rows) == list(range(PARTITIONS)), rows
    for row in rows:
        for t in cxtest.INPUT_TOPICS:
            got = row["next_offsets"][t]
            want = hw[(t, row["partition"])]
            assert (got or 0) == want, f"{t}[{row['partition']}]: stored next offset {got}, high watermark {want}"


def dlq_counts(bootstrap, start=None):
    recs = consume_all(bootstrap, "cx.dlq", timeout_s=120)
    if start:
        recs = [r for r in recs if r.offset >= start.get(r.partition, 0)]
    codes = Counter()
    for r in recs:
        h = dict(r.headers)
        assert {"cx.error", "cx.error.detail", "cx.source.topic", "cx.source.partition",
                "cx.source.offset"} <= set(h), h
        codes[h["cx.error"].decode()] += 1
    return codes, recs


# --- tests ----------------------------------------------------------------------------------------

def test_live_run_state_equals_truth_and_dlq_counts_match():
    env = setup()
    b, truth, hw = env["broker"], env["truth"], env["hw"]
    cfg_path, group = config(env, "live")
    dlq_start = end_offsets(b.bootstrap, "cx.dlq")
    t0 = time.monotonic()
    proc = start_run(cfg_path, "live", env)
    try:
        wait_done(b.bootstrap, group, hw, proc, DONE_TIMEOUT_S)
        wall = time.monotonic() - t0
        rss = peak_rss_mb(proc.pid)
        cpu = cpu_s(proc.pid)
        # while the processor holds state.dir, `state dump` refuses it and says why
        r = run_cxstream(["state", "dump", "-c", cfg_path], check=False)
        assert r.returncode == 1 and "locked" in r.stderr and "stop the processor" in r.stderr, \
            (r.returncode, r.stderr)
    finally:
        rc = proc.stop()
    assert rc == 0, f"cxstream run exited {rc} after SIGTERM:\n{proc.log()[-3000:]}"
    log(f"live run: events={env['events']} wall={wall:.1f} s (start to all committed) "
        f"events/s={env['events'] / wall:,.0f} processor CPU={cpu:.1f} s "
        f"({env['events'] / cpu:,.0f} events per CPU-second) peak RSS={rss:.0f} MB "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    offsets_match_watermarks(cfg_path, hw)
    n = check_state_against_truth(dump_state(cfg_path), truth)
    log(f"state: {n} customers, plays/purchases/revenue exactly as the truth")
    codes, _ = dlq_counts(b.bootstrap, dlq_start)
    want = {k: v for k, v in truth["invalid"].items() if v}
    assert dict(codes) == want, f"cx.dlq by cx.error {dict(codes)} != truth {want}"
    log(f"cx.dlq: {sum(codes.values())} records, by code exactly as the truth: {dict(sorted(codes.items()))}")


def test_kill_9_mid_stream_and_restart_gives_exact_state():
    env = setup()
    b, truth, hw = env["broker"], env["truth"], env["hw"]
    cfg_path, group = config(env, "crash")
    seg_start = end_offsets(b.bootstrap, "cx.segment_changes")
    total = sum(hw.values())
    t0 = time.monotonic()
    proc = start_run(cfg_path, "crash-1", env)
    try:
        def half_committed():
            if not proc.alive():
                raise RuntimeError(f"cxstream run exited {proc.proc.returncode}:\n{proc.log()[-3000:]}")
            return committed_total(b.bootstrap, group) >= total // 2
        wait_for(half_committed, timeout_s=DONE_TIMEOUT_S, interval_s=0.2, what="half of the records committed")
        at_kill = committed_total(b.bootstrap, group)
    finally:
        proc.kill()
    log(f"killed with SIGKILL at {at_kill} of {total} records committed "
        f"({time.monotonic() - t0:.1f} s after start)")
    proc2 = start_run(cfg_path, "crash-2", env)
    try:
        # its own assignment first: the first run may have committed everything before the kill
        proc2.wait_log("consumer assigned topic=", timeout_s=DONE_TIMEOUT_S)
        wait_done(b.bootstrap, group, hw, proc2, DONE_TIMEOUT_S)
    finally:
        rc = proc2.stop()
    assert rc == 0, f"restarted cxstream run exited {rc}:\n{proc2.log()[-3000:]}"
    log(f"restart finished: total wall {time.monotonic() - t0:.1f} s")
    offsets_match_watermarks(cfg_path, hw)
    n = check_state_against_truth(dump_state(cfg_path), truth)
    log(f"state after the crash: {n} customers, exactly as the truth (nothing counted twice)")

    recs = [r for r in consume_all(b.bootstrap, "cx.segment_changes", timeout_s=120)
            if r.offset >= seg_start.get(r.partition, 0)]
    seen, repeats = {}, 0
    for r in recs:
        _, v = cxtest.decode(r.value)
        assert v["customer_id"] == r.key, (r.key, v)
        ident = (v["customer_id"], v["cause"], v["ts"], v["segment"])
        if ident in seen:
            repeats += 1
            assert v == seen[ident], f"repeat of {ident} differs:\n{seen[ident]}\n{v}"
        else:
            seen[ident] = v
    # the same (customer, cause) must never decide two different segments
    by_cause = Counter((c, cause) for (c, cause, _ts, _seg) in seen)
    conflicting = [k for k, cnt in by_cause.items() if cnt > 1]
    assert not conflicting, f"same customer and cause with different segment or ts: {conflicting[:5]}"
    log(f"cx.segment_changes: {len(recs)} records, {len(seen)} distinct, {repeats} exact repeats "
        f"after the crash")


def test_invalid_record_at_the_end_of_a_partition_is_committed_past():
    """A record that goes to cx.dlq still advances the stored and committed offsets: with an
    invalid record last in its partition, the group must still reach the high watermark (and a
    restart must not send it to cx.dlq again)."""
    env = setup()
    b = env["broker"]
    names = {t: "edge." + t for t in cxtest.INPUT_TOPICS}
    for t in names.values():
        b.create_topic(t, PARTITIONS, {"retention.ms": "-1"})
    for t in names.values():
        wait_for(lambda: b.topic_partitions(t) == PARTITIONS, timeout_s=30, what=f"topic {t}")
    ts = 1736121600000
    play = cxtest.encode("PlayEvent", {"event_id": "edge-1", "customer_id": "edge-c1", "ts": ts,
                                       "title_id": "t0001", "genre": None, "seconds_watched": 600,
                                       "device": None, "campaign_code": None})
    bad = b"\x01" + play[1:]  # BAD_FRAMING: magic byte 1
    b.produce(names["cx.play"], [("edge-c1", play), ("edge-c1", bad)])
    part = cxtest.partition_of("edge-c1", PARTITIONS)
    cfg_path, group = config(env, "edge")
    with open(cfg_path, "a") as f:
        for t, n in names.items():
            f.write(f"topic.{t[3:]}={n}\n")
        f.write("topic.dlq=edge.dlq\n")
    hw = {(t, p): (2 if (t, p) == (names["cx.play"], part) else 0)
          for t in names.values() for p in range(PARTITIONS)}

    def committed_edge():
        c = _admin_consumer(b.bootstrap, group)
        try:
            tps = [TopicPartition(t, p) for (t, p) in hw]
            return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in c.committed(tps, timeout=10)}
        finally:
            c.close()
    for attempt in (1, 2):
        proc = start_run(cfg_path, f"edge-{attempt}", env)
        try:
            def done():
                if not proc.alive():
                    raise RuntimeError(proc.log()[-3000:])
                return committed_edge() == hw and dlq_size(b.bootstrap) >= 1
            if attempt == 2:
                # the offsets are already committed past: await this run's own assignment, which
                # must start after the rejected record (offset 2), before judging anything
                proc.wait_log(f"assigned topic={names['cx.play']} partition={part} offset=2", timeout_s=60)
            wait_for(done, timeout_s=60, interval_s=0.2, what="the invalid last record committed past")
        finally:
            rc = proc.stop()
        assert rc == 0, open(proc.log_path, errors="replace").read()[-3000:]
    assert dlq_size(b.bootstrap) == 1, "the rejected record went to the DLQ again after a restart"
    profiles = dump_state(cfg_path)
    assert list(profiles) == ["edge-c1"] and profiles["edge-c1"]["plays_total"] == 1, profiles


def test_stop_signal_while_the_cluster_is_unreachable_exits_cleanly():
    """SIGTERM while `run` still waits for the cluster's metadata stops it at once with exit 0 (it
    used to wait out the 30 s metadata timeout and exit 1)."""
    tmp = tempfile.mkdtemp(prefix="cx-unreachable-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: every connect is refused
        cfg = write_config(os.path.join(tmp, "u.properties"), {
            "bootstrap.servers": f"127.0.0.1:{s.getsockname()[1]}",
            "state.dir": os.path.join(tmp, "state"), "http.port": 0, "log.level": "info"})
        proc = CxProcess(["run", "-c", cfg], log_path=os.path.join(tmp, "run.log"))
        try:
            proc.wait_log("Connection refused", timeout_s=30)  # librdkafka's: it is waiting now
            t0 = time.monotonic()
        finally:
            rc = proc.stop(timeout_s=20)
        took = time.monotonic() - t0
    with open(proc.log_path, errors="replace") as f:
        out = f.read()
    log(f"stopped {took:.2f} s after SIGTERM, exit {rc}")
    assert rc == 0, out[-3000:]
    assert took < 5, f"took {took:.1f} s to stop"
    assert "signal received during start-up" in out, out[-3000:]
    shutil.rmtree(tmp, ignore_errors=True)


def dlq_size(bootstrap):
    try:
        return sum(end_offsets(bootstrap, "edge.dlq").values())
    except KeyError:
        return 0


if __name__ == "__main__":
    try:
        cxtest.main(globals())
    finally:
        teardown()
