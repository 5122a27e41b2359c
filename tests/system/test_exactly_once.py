"""Exactly-once on a real broker (issue 6): processing.guarantee=exactly_once, two instances in one
group, and every few seconds one of them is killed with SIGKILL and restarted on its state dir
(open transactions are aborted by the restarted producer's init_transactions, or time out; local
state whose offsets differ from the group's committed ones is rebuilt from cx.changelog). When the
group has committed every input record, a read_committed consumer must find every output exactly
once: no duplicate trigger_id, response_id, or (customer_id, cause) segment change; and the final
state (each partition from a state dir whose offsets reached the end) must equal the generator's
truth per customer (plays, purchases, revenue). Repeats visible to a read_uncommitted consumer (the
aborted attempts) are counted and printed.

Scale: CX_EOS_CUSTOMERS x CX_EOS_DAYS (default 6000 x 60, about 0.3 M events); CX_EOS_KILL_EVERY_S
(default 4)."""
import cxtest  # first: re-execs under .venv/bin/python when needed

import os
import time
from collections import Counter

import opstest
from opstest import log

CUSTOMERS = int(os.environ.get("CX_EOS_CUSTOMERS", "6000"))
DAYS = int(os.environ.get("CX_EOS_DAYS", "60"))
KILL_EVERY_S = float(os.environ.get("CX_EOS_KILL_EVERY_S", "4"))
MAX_KILLS = int(os.environ.get("CX_EOS_MAX_KILLS", "8"))
TIMEOUT_S = float(os.environ.get("CX_EOS_TIMEOUT_S", "240"))
OUT_TOPICS = opstest.OUT_TOPICS
GROUP = "cx-eos"

_env = {}


def setup():
    if not _env:
        _env.update(opstest.generate(CUSTOMERS, DAYS, seed=41))
    return _env


def teardown():
    opstest.teardown(_env)


def duplicates(bootstrap, topic, ident, read_committed):
    recs = cxtest.consume_all(bootstrap, topic, read_committed=read_committed, timeout_s=120)
    c = Counter()
    for r in recs:
        _, v = cxtest.decode(r.value)
        c[ident(v)] += 1
    return len(recs), {k: n for k, n in c.items() if n > 1}


def test_sigkill_every_few_seconds_outputs_exactly_once_and_state_exact():
    env = setup()
    b, truth, hw = env["broker"], env["truth"], env["hw"]
    props = {f"topic.{t}": f"eos.{t}" for t in OUT_TOPICS}
    props.update({"processing.guarantee": "exactly_once", "kafka.transaction.timeout.ms": 10000})
    cfgs = {n: opstest.config(env, f"eos-{n}", GROUP, props) for n in ("a", "b")}
    runs = Counter()

    def launch(n):
        runs[n] += 1
        return opstest.start(env, cfgs[n], f"eos-{n}-{runs[n]}")
    procs = {n: launch(n) for n in ("a", "b")}
    all_procs = list(procs.values())
    kills, t0 = 0, time.monotonic()
    try:
        def done():
            got = opstest.committed(b.bootstrap, GROUP, env["partitions"])
            return all(got[k] == v for k, v in hw.items())
        next_kill = time.monotonic() + KILL_EVERY_S
        while not done():
            if time.monotonic() - t0 > TIMEOUT_S:
                raise TimeoutError(f"not done after {TIMEOUT_S} s, {kills} kills:\n" +
                                   "\n".join(p.log()[-2000:] for p in procs.values()))
            for n, p in procs.items():
                if not p.alive():
                    raise RuntimeError(f"instance {n} exited {p.proc.returncode}:\n{p.log()[-3000:]}")
            if kills < MAX_KILLS and time.monotonic() >= next_kill:
                n = "ab"[kills % 2]
                procs[n].kill()
                kills += 1
                at = opstest.committed_total(b.bootstrap, GROUP, env["partitions"])
                log(f"kill {kills}: SIGKILL instance {n} at {at} of {env['events']} committed "
                    f"({time.monotonic() - t0:.1f} s)")
                procs[n] = launch(n)
                all_procs.append(procs[n])
                next_kill = time.monotonic() + KILL_EVERY_S
            time.sleep(0.3)
    finally:
        # a relaunched instance must have reached its own start-up before it is stopped (the
        # other instance's commits can end the wait above first; a SIGTERM before main() would
        # end it with -15)
        for p in procs.values():
            if p.alive():
                p.wait_log("consumer started partitions=", timeout_s=60)
        codes = {n: p.stop() for n, p in procs.items()}
    assert all(c == 0 for c in codes.values()), codes
    log(f"done after {time.monotonic() - t0:.1f} s with {kills} SIGKILLs")
    logs = "\n".join(open(p.log_path, errors="replace").read() for p in all_procs)
    rebuilt = logs.count("local state does not match the group's committed offsets")
    restored = opstest.restores(logs)
    log(f"{len(restored)} partition restores ({sum(r[4] for r in restored)} records), {rebuilt} of them "
        f"because local state did not match the committed offsets")

    checks = [("eos.disengagement_triggers", lambda v: v["trigger_id"], "trigger_id"),
              ("eos.campaign_responses", lambda v: v["response_id"], "response_id"),
              ("eos.segment_changes", lambda v: (v["customer_id"], v["cause"]), "(customer_id, cause)")]
    for topic, ident, name in checks:
        n, dups = duplicates(b.bootstrap, topic, ident, read_committed=True)
        assert not dups, f"{topic}: {len(dups)} duplicate {name} under read_committed, e.g. {list(dups.items())[:3]}"
        n_unc, dups_unc = duplicates(b.bootstrap, topic, ident, read_committed=False)
        log(f"{topic}: {n} records read_committed, no duplicate {name}; read_uncommitted sees {n_unc} "
            f"({len(dups_unc)} ids repeated by aborted transactions)")
        assert n > 0 or topic != "eos.segment_changes", f"{topic} is empty"

    state, owners = opstest.final_state(list(cfgs.values()), hw, env["partitions"])
    expected = {cid: c for cid, c in truth["customers"].items()
                if c["plays"] + c["purchases"] + c["surveys"] + c["email_sends"] > 0}
    assert set(state) == set(expected), (len(state), len(expected))
    bad = [(cid, (state[cid]["plays_total"], state[cid]["purchases_total"], state[cid]["revenue_total_minor"]),
            (c["plays"], c["purchases"], c["revenue_minor"])) for cid, c in expected.items()
           if (state[cid]["plays_total"], state[cid]["purchases_total"], state[cid]["revenue_total_minor"])
           != (c["plays"], c["purchases"], c["revenue_minor"])]
    assert not bad, f"{len(bad)} customers differ from the truth (got, want): {bad[:5]}"
    log(f"state of {len(state)} customers exactly as the truth")


if __name__ == "__main__":
    try:
        cxtest.main(globals())
    finally:
        teardown()
