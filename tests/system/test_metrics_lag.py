"""Consumer lag in /metrics on a real broker (issue 6): /metrics is parsed with prometheus_client's
text parser (the parser Prometheus' Python client ships). The processor catches up with a generated
data set (lag 0 on every input partition), is paused with SIGSTOP while more events are produced,
and resumed with SIGCONT: cxstream_consumer_lag_records (from librdkafka statistics) must rise to
about the number of records produced meanwhile, and return to 0 once they are processed. The
largest lag seen is printed."""
import cxtest  # first: re-execs under .venv/bin/python when needed

import os
import shutil
import signal
import time

from prometheus_client.parser import text_string_to_metric_families

import opstest
from opstest import log

GROUP = "cx-lag"
_env = {}


def setup():
    if not _env:
        _env.update(opstest.generate(3000, 30, seed=53))
    return _env


def teardown():
    if "broker" in _env:
        _env["broker"].stop()
    if "tmp" in _env and os.environ.get("CX_KEEP_FAILED") != "1":
        shutil.rmtree(_env["tmp"], ignore_errors=True)
    _env.clear()


def scrape(port):
    """{metric family name: [(labels, value)]} from /metrics, via prometheus_client's parser."""
    fams = {}
    for fam in text_string_to_metric_families(opstest.http_text(port, "/metrics")):
        fams[fam.name] = [(s.labels, s.value) for s in fam.samples]
    return fams


def input_lag(fams):
    """(sum, number of partitions) of cxstream_consumer_lag_records over the input topics."""
    samples = [(lb, v) for lb, v in fams.get("cxstream_consumer_lag_records", [])
               if lb.get("topic") in cxtest.INPUT_TOPICS]
    return sum(v for _, v in samples), len(samples)


def test_lag_rises_while_paused_and_returns_to_zero():
    env = setup()
    b = env["broker"]
    port = opstest.free_port()
    cfg = opstest.config(env, "lag", GROUP, {"http.port": port, "statistics.interval_ms": 250})
    proc = opstest.start(env, cfg, "lag")
    try:
        opstest.wait_done(env, GROUP, [proc], 120)

        def caught_up():
            total, n = input_lag(scrape(port))
            return n == len(cxtest.INPUT_TOPICS) * env["partitions"] and total == 0
        cxtest.wait_for(caught_up, timeout_s=30, interval_s=0.2, what="lag 0 on every input partition")
        log("caught up: cxstream_consumer_lag_records is 0 on all 16 input partitions")

        os.kill(proc.pid, signal.SIGSTOP)
        before = sum(env["hw"].values())
        cxtest.run_cxstream(["gen", "-b", b.bootstrap, "--customers", "6000", "--days", "30", "--seed", "54",
                             "--start-ts", "1741000000000"], timeout_s=300)
        env["hw"] = opstest.high_watermarks(b.bootstrap)
        produced = sum(env["hw"].values()) - before
        log(f"paused with SIGSTOP; {produced} new input records produced meanwhile")
        os.kill(proc.pid, signal.SIGCONT)

        max_lag = 0
        t0 = time.monotonic()

        def back_to_zero():
            nonlocal max_lag
            total, _ = input_lag(scrape(port))
            max_lag = max(max_lag, total)
            return max_lag > 0 and total == 0
        cxtest.wait_for(back_to_zero, timeout_s=120, interval_s=0.05, what="lag up, then back to 0")
        opstest.wait_done(env, GROUP, [proc], 60)
        log(f"after SIGCONT: largest lag seen {max_lag:,.0f} records ({produced} produced while paused), "
            f"back to 0 after {time.monotonic() - t0:.1f} s")
        assert max_lag >= produced * 0.25, (max_lag, produced)
        assert max_lag <= produced, (max_lag, produced)
    finally:
        try:
            os.kill(proc.pid, signal.SIGCONT)
        except OSError:
            pass
        rc = proc.stop()
    assert rc == 0, rc


if __name__ == "__main__":
    try:
        cxtest.main(globals())
    finally:
        teardown()
