"""Restore from the changelog on a real broker (issue 6): one instance processes a generated data
set to the end and stops (SIGTERM); its state dump is the reference. (1) A warm restart on the same
state dir reads only the changelog tail after each partition's checkpoint. (2) With the state dir
deleted, a restart rebuilds every partition from cx.changelog: the state dump equals the reference
exactly and the stored offsets equal the input high watermarks (nothing is processed again). The
restore speed (records/s) is printed; /readyz reports the restoring partitions while it runs. (3) An
instance of another group.id, without local state, on the same cx.changelog stops with an error
naming both groups instead of restoring this group's customers.

Scale: CX_RESTORE_CUSTOMERS / CX_RESTORE_DAYS (default 8000 x 60)."""
import cxtest  # first: re-execs under .venv/bin/python when needed

import json
import os
import shutil
import threading
import time

import opstest
from opstest import log

CUSTOMERS = int(os.environ.get("CX_RESTORE_CUSTOMERS", "8000"))
DAYS = int(os.environ.get("CX_RESTORE_DAYS", "60"))
TIMEOUT_S = float(os.environ.get("CX_RESTORE_TIMEOUT_S", "180"))
GROUP = "cx-restore"

_env = {}


def setup():
    if not _env:
        _env.update(opstest.generate(CUSTOMERS, DAYS, seed=23))
    return _env


def teardown():
    opstest.teardown(_env)


def stored_offsets_equal_high_watermarks(cfg_path, hw):
    r = cxtest.run_cxstream(["state", "offsets", "-c", cfg_path])
    for row in (json.loads(line) for line in r.stdout.splitlines()):
        for t in cxtest.INPUT_TOPICS:
            got, want = row["next_offsets"][t] or 0, hw[(t, row["partition"])]
            assert got == want, f"{t}[{row['partition']}] stored {got}, high watermark {want}"


def run_once(env, cfg_path, name, port):
    """Start, wait until the group is at the end and /readyz is ready, stop; returns the log and
    the /readyz bodies seen while restoring."""
    proc = opstest.start(env, cfg_path, name)
    seen_restoring = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                code, body = opstest.http_json(port, "/readyz", timeout_s=2)
                if body and body.get("state") == "restoring":
                    seen_restoring.append(body)
            except Exception:
                pass
            time.sleep(0.05)
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        # a restart's offsets are committed already: its own assignment first
        proc.wait_log("consumer assigned topic=", timeout_s=TIMEOUT_S)
        opstest.wait_done(env, GROUP, [proc], TIMEOUT_S)
        cxtest.wait_for(lambda: opstest.http_json(port, "/readyz")[0] == 200, timeout_s=60, what="/readyz 200")
    finally:
        stop.set()
        rc = proc.stop()
        t.join()
    with open(proc.log_path, errors="replace") as f:
        text = f.read()
    assert rc == 0, f"cxstream run exited {rc}:\n{text[-3000:]}"
    return text, seen_restoring


def test_warm_restart_reads_only_the_tail_and_deleted_state_is_rebuilt_exactly():
    env = setup()
    port = opstest.free_port()
    cfg_path = opstest.config(env, "a", GROUP, {"http.port": port})
    t0 = time.monotonic()
    run_once(env, cfg_path, "first", port)
    log(f"first run to the end: {time.monotonic() - t0:.1f} s")
    reference = opstest.dump_state(cfg_path)
    assert len(reference) > CUSTOMERS // 2, len(reference)
    hw = env["hw"]
    stored_offsets_equal_high_watermarks(cfg_path, hw)
    cl_end = opstest.high_watermarks(env["broker"].bootstrap, topics=["cx.changelog"])
    log(f"reference state: {len(reference)} customers; cx.changelog end offsets {sorted(cl_end.values())}")

    # (1) warm restart: only the tail after the checkpoint
    text, _ = run_once(env, cfg_path, "warm", port)
    warm = opstest.restores(text)
    assert sorted(r[0] for r in warm) == list(range(env["partitions"])), warm
    assert all(r[1] == "tail" for r in warm), warm
    tail = sum(r[4] for r in warm)
    # at most the meta records of the final flush of the first run's SIGTERM path (one per partition)
    assert tail <= 2 * env["partitions"], f"warm restart read {tail} records: {warm}"
    assert opstest.dump_state(cfg_path) == reference, "state changed across a warm restart"
    log(f"warm restart: {tail} changelog records read (tail only): {[(r[0], r[2], r[3]) for r in warm]}")

    # (2) delete the state dir: everything is rebuilt from the changelog
    shutil.rmtree(os.path.join(env["tmp"], "state-a"))
    text, restoring = run_once(env, cfg_path, "cold", port)
    cold = opstest.restores(text)
    assert sorted(r[0] for r in cold) == list(range(env["partitions"])), cold
    assert all(r[1] == "full" for r in cold), cold
    records = sum(r[4] for r in cold)
    seconds = sum(r[5] for r in cold)
    got = opstest.dump_state(cfg_path)
    diff = opstest.diff_states(got, reference)
    assert not diff, f"rebuilt state differs from the state before: {diff}"
    stored_offsets_equal_high_watermarks(cfg_path, hw)
    rate = records / seconds if seconds > 0 else float("inf")
    log(f"restore from cx.changelog: {records} records in {seconds:.2f} s = {rate:,.0f} records/s; "
        f"state equals the reference ({len(got)} customers); /readyz said 'restoring' "
        f"{len(restoring)} times" + (f", e.g. {restoring[-1]}" if restoring else ""))
    for body in restoring:
        assert body["restoring_partitions"] >= 1 and "restore" in body, body
    # nothing was processed again: no new event was applied after the restore
    assert "stopped consumed=0 " in text, [line for line in text.splitlines() if "stopped consumed" in line]

    # (3) another application (group) on the same cx.changelog, without local state: it must refuse
    # to restore this group's customers, not adopt them
    other = opstest.config(env, "other", GROUP + "-other")
    proc = opstest.start(env, other, "other")
    try:
        cxtest.wait_for(lambda: not proc.alive(), timeout_s=90, what="the other group's instance to stop")
    finally:
        text = proc.log()
        rc = proc.stop()
    assert rc != 0, f"another group restored from this group's changelog (exit {rc}):\n{text[-2000:]}"
    assert f'was written by group "{GROUP}", not "{GROUP}-other"' in text, text[-3000:]
    assert "topic.changelog" in text, text[-3000:]
    log("another group on the same changelog stopped with: " +
        next(line for line in text.splitlines() if "was written by group" in line)[-200:])


if __name__ == "__main__":
    try:
        cxtest.main(globals())
    finally:
        teardown()
