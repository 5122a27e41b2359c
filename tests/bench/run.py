#!/usr/bin/env python3
"""run.py — issue 7's benchmark, every part, medians of RUNS runs, printed as one Markdown table
(called by run.sh). Sizes come from the environment (defaults fit ~15 min on the 2-core machine):
  CX_BENCH_RUNS (3), CX_BENCH_CORE ("100000:300000,1000000:1000000,2000000:2000000" = customers:events),
  CX_BENCH_CG_EVENTS (300000, callgrind run: enough events for 3 flushes, so the RocksDB writes count), CX_BENCH_E2E_CUSTOMERS (20000 -> ~1.45 M records over 90 days),
  CX_BENCH_CG_GEN_CUSTOMERS (27600 -> ~2 M records: the callgrind run on the end-to-end data, `bench_core --source gen`;
    the core also runs the whole end-to-end data, E2E_CUSTOMERS, flushing every GEN_FLUSH_EVERY = 2,000,000 events,
    about what a 5 s commit interval is at the end-to-end rate),
  CX_BENCH_CORE_DECODED (65536) and CX_BENCH_E2E_DECODED (16384): cache.max_decoded of the compact-cache rows
  (the core one at the second CORE size with cache.max_customers = its customers; the end-to-end one also
  once more with RocksDB's pools at 8 MB, state.block_cache_mb and state.write_buffer_mb: the smallest footprint),
  CX_BENCH_E2E_COMMIT_MS (1000): commit.interval_ms of the rows beside the default (5000 under at-least-once),
    the peer's first interval ("0" leaves those rows out; the peer then runs at 5000 only),
  CX_BENCH_E2E_THREADS (2, the peer's stream threads): processing.threads of the threads rows ("0" leaves them out);
    two of those rows trade memory: CX_BENCH_E2E_BAL_DECODED (65536) decoded with 8 MB memtables, and
    CX_BENCH_E2E_DECODED decoded with both 8 MB pools.
`run.sh --instances N [key=value ...]` instead runs N cxstream instances of one group against the loaded broker
once (scale-out on one machine) and prints one line: seconds to zero lag, records/s, each one's peak RSS and CPU.
The broker is tools/kafka/broker.sh on CX_KAFKA_PORT (39192) with data in CX_KAFKA_DIR (/tmp/cxbench-kafka);
it is started, and loaded with `cxstream gen`, when needed.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("CX_BENCH_BUILD", os.path.join(ROOT, "build-bench"))
PORT = os.environ.get("CX_KAFKA_PORT", "39192")
KDIR = os.environ.get("CX_KAFKA_DIR", "/tmp/cxbench-kafka")
BROKERS = "127.0.0.1:" + PORT
RUNS = int(os.environ.get("CX_BENCH_RUNS", "3"))
CORE = [tuple(int(x) for x in s.split(":")) for s in
        os.environ.get("CX_BENCH_CORE", "100000:300000,1000000:1000000,2000000:2000000").split(",")]
CG_EVENTS = int(os.environ.get("CX_BENCH_CG_EVENTS", "300000"))
E2E_CUSTOMERS = int(os.environ.get("CX_BENCH_E2E_CUSTOMERS", "20000"))
CG_GEN_CUSTOMERS = int(os.environ.get("CX_BENCH_CG_GEN_CUSTOMERS", "27600"))
GEN_FLUSH_EVERY = 2000000
CORE_DECODED = int(os.environ.get("CX_BENCH_CORE_DECODED", "65536"))
E2E_DECODED = int(os.environ.get("CX_BENCH_E2E_DECODED", "16384"))
E2E_BAL_DECODED = int(os.environ.get("CX_BENCH_E2E_BAL_DECODED", "65536"))
E2E_COMMIT_MS = int(os.environ.get("CX_BENCH_E2E_COMMIT_MS", "1000"))
DEFAULT_COMMIT_MS = 5000  # cxstream's commit.interval_ms under at-least-once (config.h)
E2E_THREADS = int(os.environ.get("CX_BENCH_E2E_THREADS", "2"))
KS_THREADS = 2
PY = os.path.join(ROOT, ".venv", "bin", "python")
INPUTS = ["cx.play", "cx.purchase", "cx.email_send", "cx.survey"]
ENV = dict(os.environ, CX_KAFKA_PORT=PORT, CX_KAFKA_DIR=KDIR)


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


def kv(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}


def med(xs):
    return statistics.median(xs)


def core(customers, events, enriched, extra=()):
    """events 0: --source gen, the whole generated stream of `customers`."""
    size = ["--events", str(events)] if events else ["--source", "gen", "--flush-every", str(GEN_FLUSH_EVERY)]
    out = subprocess.run([os.path.join(BUILD, "bench_core"), "--customers", str(customers), *size,
                          "--enriched", str(enriched), *extra], check=True, capture_output=True, text=True).stdout
    return kv(out.strip().splitlines()[-1])


def callgrind(customers, events):
    """Instructions per event of the processing; events 0: the generated stream, as in core()."""
    cg = "/tmp/cxbench-callgrind.out"
    size = ["--events", str(events)] if events else ["--source", "gen", "--flush-every", str(GEN_FLUSH_EVERY)]
    out = subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=process_chunk",
                          "--callgrind-out-file=" + cg, os.path.join(BUILD, "bench_core"), "--customers",
                          str(customers), *size], check=True, capture_output=True, text=True).stdout
    n = int(kv(out.strip().splitlines()[-1])["events"])
    with open(cg) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1]) / n
    return float("nan")


def broker_up():
    subprocess.run(["bash", os.path.join(ROOT, "tools/kafka/broker.sh"), "start"], check=True, env=ENV,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["bash", os.path.join(ROOT, "tools/kafka/broker.sh"), "topics", "4"], check=True, env=ENV,
                   stdout=subprocess.DEVNULL)
    subprocess.run([PY, os.path.join(HERE, "mktopic.py"), BROKERS, "cxbench.ks.segment_changes", "4"], check=True)


def bare():
    out = subprocess.run([os.path.join(BUILD, "bare_consumer"), BROKERS] + INPUTS, check=True, capture_output=True,
                         text=True).stdout
    return kv(out)


def kcat():
    t0 = time.time()
    n = 0
    for t in INPUTS:  # kcat -e reads one topic (all its partitions) to the end
        p = subprocess.run(["kcat", "-C", "-b", BROKERS, "-t", t, "-e", "-o", "beginning", "-q", "-f", "x"],
                           check=True, capture_output=True)
        n += len(p.stdout)
    return n, time.time() - t0


def hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def timed_group(cmds, group, topics, cwd=None):
    """Starts every command of cmds (members of one group), waits for the group's committed offsets to
    reach the end, returns (s, [peak RSS MB, CPU s] of each)."""
    t0 = time.time()
    ps = [subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL,
                           stderr=open("/tmp/cxbench-%s-%d.log" % (group, i), "w")) for i, cmd in enumerate(cmds)]
    try:
        out = subprocess.run([PY, os.path.join(HERE, "lag.py"), BROKERS, group, "--since", str(t0), "--timeout", "900"]
                             + topics, check=True, capture_output=True, text=True).stdout
        secs = float(out.strip())
        used = [(hwm_kb(p.pid) / 1024.0, cpu_s(p.pid)) for p in ps]
    finally:
        for p in ps:
            p.terminate()
        for p in ps:
            p.wait(60)
    return secs, used


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def cx_conf(path, group, sdir, extra):
    """A cxstream config for the end-to-end runs: its own changelog and partials topics, as Kafka Streams
    names them after the application id (with the shared cx.changelog every run restored the earlier
    runs' state first)."""
    with open(path, "w") as f:
        f.write("bootstrap.servers=%s\ngroup.id=%s\nstate.dir=%s\nenriched.enabled=false\nlog.level=warn\n"
                "topic.changelog=%s.changelog\ntopic.partials=%s.partials\n%s"
                % (BROKERS, group, sdir, group, group, extra))
    return [os.path.join(BUILD, "cxstream"), "run", "-c", path]


def instances(n, settings):
    """--instances N [key=value ...]: N cxstream instances of one group on this machine against the loaded
    benchmark broker (scale-out on one machine); one line of figures, one run."""
    subprocess.run(["bash", os.path.join(HERE, "build.sh")], check=True, stdout=subprocess.DEVNULL)
    records = int(bare()["records"])
    if records == 0:
        log("no records on %s: run run.sh once to load the broker" % BROKERS)
        return 1
    group = "cxbench-instances%d-%d" % (n, time.time())
    cmds = []
    for i in range(n):
        sdir = "/tmp/cxbench-state-i%d" % i
        shutil.rmtree(sdir, ignore_errors=True)
        # http.port=0: the instances would share the default port
        cmds.append(cx_conf("/tmp/cxbench-run-i%d.conf" % i, group, sdir,
                            "".join(kv + "\n" for kv in ["http.port=0"] + settings)))
    log("%d instances of group %s" % (n, group))
    secs, used = timed_group(cmds, group, INPUTS)
    for i in range(n):
        shutil.rmtree("/tmp/cxbench-state-i%d" % i, ignore_errors=True)
    print("instances=%d records=%d seconds=%.3f records_per_s=%.0f %s" % (n, records, secs, records / secs, " ".join(
        "peak_rss_mb_%d=%.0f cpu_s_%d=%.1f" % (i + 1, rss, i + 1, cpu) for i, (rss, cpu) in enumerate(used))))
    return 0


def main():
    subprocess.run(["bash", os.path.join(HERE, "build.sh")], check=True, stdout=subprocess.DEVNULL)
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    rows = []
    tag = str(int(time.time()))
    load = open("/proc/loadavg").read().split()[0]  # at start: read at the end it shows the runs' own load
    started = time.strftime("%Y-%m-%d %H:%M")

    # 1. core; at the second size also with every customer cached, most of them in the compact encoding
    runs = [(c, e, en, ()) for c, e in CORE for en in ((0, 1) if c == CORE[0][0] else (0,))]
    if len(CORE) > 1:
        c, e = CORE[1]
        runs.insert(3, (c, e, 0, ("--set", "cache.max_customers=%d" % c, "--set", "cache.max_decoded=%d" % CORE_DECODED)))
    runs.append((E2E_CUSTOMERS, 0, 0, ()))  # the end-to-end data through the core
    for customers, events, enriched, extra in runs:
        rs = []
        for i in range(RUNS):
            log("core customers=%d events=%d enriched=%d %s run %d" % (customers, events, enriched, " ".join(extra),
                                                                       i + 1))
            rs.append(core(customers, events, enriched, extra))
        if events:
            what = "%s customers, %s events, enriched %s" % (f"{customers:,}", f"{events:,}", "on" if enriched else "off")
        else:
            what = ("the end-to-end data (cxstream gen, %s customers, %s events), flush every %s events, enriched off"
                    % (f"{customers:,}", f"{int(rs[0]['events']):,}", f"{GEN_FLUSH_EVERY:,}"))
        if extra:
            what += ", cache.max_customers=%s, cache.max_decoded=%s" % (f"{customers:,}", f"{CORE_DECODED:,}")
        rows.append(("core", what,
                     {"ev/s (wall)": med(float(r["events_per_s"]) for r in rs),
                      "ev/s (CPU)": med(int(r["events"]) / float(r["cpu_seconds"]) for r in rs),
                      "peak RSS MB": med(float(r["peak_rss_mb"]) for r in rs),
                      "RocksDB B/customer": med(float(r["db_bytes_per_customer"]) for r in rs),
                      "outputs/event": med((int(r["segment_changes"]) + int(r["triggers"]) +
                                            int(r["enriched_out"])) / int(r["events"]) for r in rs),
                      "decodes/event": med(float(r["decodes_per_event"]) for r in rs)}))
    log("callgrind %d events" % CG_EVENTS)
    ins = [callgrind(CORE[0][0], CG_EVENTS) for _ in range(1)]  # deterministic: one run is its own median
    rows.append(("core", "instructions/event (callgrind, %s customers, %s events)" % (f"{CORE[0][0]:,}",
                                                                                   f"{CG_EVENTS:,}"),
                 {"instr/event": med(ins)}))
    log("callgrind on the generated data, %d customers" % CG_GEN_CUSTOMERS)
    ins = callgrind(CG_GEN_CUSTOMERS, 0)
    rows.append(("core", "instructions/event (callgrind, the end-to-end data's shape: cxstream gen, %s customers; "
                 "flush every %s events, so at the default size the event work alone)"
                 % (f"{CG_GEN_CUSTOMERS:,}", f"{GEN_FLUSH_EVERY:,}"), {"instr/event": ins}))

    # 2-4. broker
    broker_up()
    ends = bare()
    if int(ends["records"]) == 0:
        log("loading %d customers of cxstream gen into the broker" % E2E_CUSTOMERS)
        subprocess.run([os.path.join(BUILD, "cxstream"), "gen", "-b", BROKERS, "--customers", str(E2E_CUSTOMERS),
                        "--days", "90", "--rate", "0"], check=True, stderr=subprocess.DEVNULL)
        bare()  # warm-up read
    records = int(bare()["records"])
    b = [bare() for _ in range(RUNS)]
    bare_rps = med(float(x["records_per_s"]) for x in b)
    k = [kcat() for _ in range(RUNS)]
    kcat_rps = med(n / s for n, s in k)
    rows.append(("limit", "bare librdkafka consumer, %s records" % f"{records:,}", {"rec/s": bare_rps}))
    rows.append(("limit", "kcat -C -e -o beginning -q (4 topics in turn)", {"rec/s": kcat_rps}))

    def e2e(name, extra):
        cx = []
        for i in range(RUNS):
            group, sdir = "cxbench-run%s-%s-%d" % (name, tag, i), "/tmp/cxbench-state-%d" % i
            shutil.rmtree(sdir, ignore_errors=True)
            log("end to end cxstream%s run %d" % (name, i + 1))
            secs, used = timed_group([cx_conf("/tmp/cxbench-run-%d.conf" % i, group, sdir, extra)], group, INPUTS)
            cx.append((secs, used[0][0]))
            shutil.rmtree(sdir, ignore_errors=True)
        return records / med(s for s, _ in cx), med(r for _, r in cx)

    def e2e_row(what, rps, rss):
        rows.append(("end to end", what, {"rec/s": rps, "peak RSS MB": rss, "ratio to bare": rps / bare_rps,
                                          "ratio to kcat": rps / kcat_rps}))

    cx_rps, cx_rss = e2e("", "")
    e2e_row("cxstream run, defaults (commit.interval_ms=%s), enriched off, %s records, 4 partitions"
            % (f"{DEFAULT_COMMIT_MS:,}", f"{records:,}"), cx_rps, cx_rss)
    cc_rps, cc_rss = e2e("-compact", "cache.max_decoded=%d\n" % E2E_DECODED)
    e2e_row("the same with cache.max_decoded=%s" % f"{E2E_DECODED:,}", cc_rps, cc_rss)
    sm_rps, sm_rss = e2e("-small", "cache.max_decoded=%d\nstate.block_cache_mb=8\nstate.write_buffer_mb=8\n" % E2E_DECODED)
    e2e_row("the same with cache.max_decoded=%s, state.block_cache_mb=8, state.write_buffer_mb=8" % f"{E2E_DECODED:,}",
            sm_rps, sm_rss)
    if E2E_THREADS:
        th_rps, th_rss = e2e("-threads%d" % E2E_THREADS, "processing.threads=%d\n" % E2E_THREADS)
        e2e_row("the same with processing.threads=%d (default 1)" % E2E_THREADS, th_rps, th_rss)
        # the same threads with less memory: part of the profiles decoded, then also the 8 MB pools
        tb_rps, tb_rss = e2e("-threads%d-balanced" % E2E_THREADS, "processing.threads=%d\ncache.max_decoded=%d\n"
                             "state.write_buffer_mb=8\n" % (E2E_THREADS, E2E_BAL_DECODED))
        e2e_row("the same with processing.threads=%d, cache.max_decoded=%s, state.write_buffer_mb=8"
                % (E2E_THREADS, f"{E2E_BAL_DECODED:,}"), tb_rps, tb_rss)
        ts_rps, ts_rss = e2e("-threads%d-small" % E2E_THREADS, "processing.threads=%d\ncache.max_decoded=%d\n"
                             "state.block_cache_mb=8\nstate.write_buffer_mb=8\n" % (E2E_THREADS, E2E_DECODED))
        e2e_row("the same with processing.threads=%d, cache.max_decoded=%s, state.block_cache_mb=8, "
                "state.write_buffer_mb=8" % (E2E_THREADS, f"{E2E_DECODED:,}"), ts_rps, ts_rss)
    if E2E_COMMIT_MS:
        ci_rps, ci_rss = e2e("-commit%d" % E2E_COMMIT_MS, "commit.interval_ms=%d\n" % E2E_COMMIT_MS)
        e2e_row("the same with commit.interval_ms=%s" % f"{E2E_COMMIT_MS:,}", ci_rps, ci_rss)
    if E2E_THREADS and E2E_COMMIT_MS:
        tc_rps, tc_rss = e2e("-threads%d-commit%d" % (E2E_THREADS, E2E_COMMIT_MS),
                             "processing.threads=%d\ncommit.interval_ms=%d\n" % (E2E_THREADS, E2E_COMMIT_MS))
        e2e_row("the same with processing.threads=%d and commit.interval_ms=%s" % (E2E_THREADS, f"{E2E_COMMIT_MS:,}"),
                tc_rps, tc_rss)

    ks_records = 0
    for t in ("cx.play", "cx.purchase"):
        ks_records += int(subprocess.run([os.path.join(BUILD, "bare_consumer"), BROKERS, t], check=True,
                                         capture_output=True, text=True).stdout.split()[0].split("=")[1])
    jar = os.path.join(HERE, "streams")
    if not os.path.exists(os.path.join(jar, "target", "lib")):
        subprocess.run(["mvn", "-q", "-B", "package"], cwd=jar, check=True)

    def peer(commit_ms):
        ks = []
        for i in range(RUNS):
            group, sdir = "cxbench-ks%d-%s-%d" % (commit_ms, tag, i), "/tmp/cxbench-ks-%d" % i
            shutil.rmtree(sdir, ignore_errors=True)
            log("Kafka Streams commit.interval.ms=%d run %d" % (commit_ms, i + 1))
            secs, used = timed_group([["java", "-Xmx1g", "-Dcxbench.commit.ms=%d" % commit_ms, "-cp",
                                       "target/classes:target/lib/*", "cxbench.Peer", BROKERS, group, sdir,
                                       str(KS_THREADS)]], group, ["cx.play", "cx.purchase"], cwd=jar)
            ks.append((secs, used[0][0]))
            shutil.rmtree(sdir, ignore_errors=True)
        return ks_records / med(s for s, _ in ks), med(r for _, r in ks)

    def ratio_row(what, rps, rss, ks_rps, ks_rss):
        rows.append(("peer", "ratio %s / Kafka Streams" % what, {"throughput": rps / ks_rps, "peak RSS": rss / ks_rss}))

    ks_rps, ks_rss = peer(DEFAULT_COMMIT_MS)
    rows.append(("peer", "Kafka Streams 4.1.1 (%d threads, commit.interval.ms=%s), cx.play + cx.purchase, %s records"
                 % (KS_THREADS, f"{DEFAULT_COMMIT_MS:,}", f"{ks_records:,}"), {"rec/s": ks_rps, "peak RSS MB": ks_rss}))
    ratio_row("cxstream (defaults)", cx_rps, cx_rss, ks_rps, ks_rss)
    ratio_row("cxstream (cache.max_decoded=%s)" % f"{E2E_DECODED:,}", cc_rps, cc_rss, ks_rps, ks_rss)
    ratio_row("cxstream (cache.max_decoded=%s, 8 MB RocksDB pools)" % f"{E2E_DECODED:,}", sm_rps, sm_rss, ks_rps,
              ks_rss)
    if E2E_THREADS:
        ratio_row("cxstream (processing.threads=%d)" % E2E_THREADS, th_rps, th_rss, ks_rps, ks_rss)
        ratio_row("cxstream (processing.threads=%d, cache.max_decoded=%s, 8 MB memtables)"
                  % (E2E_THREADS, f"{E2E_BAL_DECODED:,}"), tb_rps, tb_rss, ks_rps, ks_rss)
        ratio_row("cxstream (processing.threads=%d, cache.max_decoded=%s, 8 MB RocksDB pools)"
                  % (E2E_THREADS, f"{E2E_DECODED:,}"), ts_rps, ts_rss, ks_rps, ks_rss)
    if E2E_COMMIT_MS:
        ks1_rps, ks1_rss = peer(E2E_COMMIT_MS)
        rows.append(("peer", "Kafka Streams, the same with commit.interval.ms=%s" % f"{E2E_COMMIT_MS:,}",
                     {"rec/s": ks1_rps, "peak RSS MB": ks1_rss}))
        ratio_row("cxstream (commit.interval_ms=%s, both)" % f"{E2E_COMMIT_MS:,}", ci_rps, ci_rss, ks1_rps, ks1_rss)
        if E2E_THREADS:
            ratio_row("cxstream (processing.threads=%d, commit.interval_ms=%s, both)" % (E2E_THREADS,
                                                                                      f"{E2E_COMMIT_MS:,}"),
                      tc_rps, tc_rss, ks1_rps, ks1_rss)

    print("Machine: %d cores (%s), %.1f GiB memory; %s to %s; load average at start %s; runs per figure: %d "
          "(median)\n" % (os.cpu_count(), cpu, mem, started, time.strftime("%H:%M"), load, RUNS))
    print("| part | what | figures |")
    print("|---|---|---|")
    for part, what, figs in rows:
        print("| %s | %s | %s |" % (part, what, "; ".join(
            "%s %s" % (k, f"{v:,.0f}" if v >= 100 else f"{v:.3g}") for k, v in figs.items())))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--instances"]:
        if len(sys.argv) < 3 or not re.fullmatch(r"[1-9][0-9]*", sys.argv[2]) or \
                any("=" not in kv for kv in sys.argv[3:]):
            sys.stderr.write("usage: run.sh --instances N [key=value ...] (N a positive integer)\n")
            sys.exit(2)
        sys.exit(instances(int(sys.argv[2]), sys.argv[3:]))
    if len(sys.argv) > 1:
        sys.stderr.write("run.py: unknown arguments %s (only --instances N [key=value ...])\n" % " ".join(sys.argv[1:]))
        sys.exit(2)
    sys.exit(main())
