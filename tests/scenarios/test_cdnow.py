#!/usr/bin/env python3
"""CDNOW real-data checks of the replay pipeline (stdlib only).

Converts ../shared/data/cdnow/CDNOW_sample.txt to replay events exactly as that folder's README
says (one purchase a line, event_id cdnow-<line number>, customer c<5 digits>, ts 12:00:00 UTC,
amount_minor round(dollars x 100)) and checks:
  (a) a full replay: every customer's purchases_total and revenue_total_minor equal a tally made
      straight from the file, no line rejected (the file is sorted by customer, so nearly every
      event is late: late events must still count), all 2,357 customers present;
  (b) the calibration replay (purchases <= 1997-09-30, --until 1997-09-30T23:59:59.999Z):
      bgnbd_x, bgnbd_t_x_days / 7 and bgnbd_T_days / 7 equal every row of
      cdnow_customers_summary.csv (frequency, recency, T rounded to 2 decimals).
Environment: CXSTREAM (the binary), CX_DATA_DIR (the data folder CMake found, ../shared/data beside
the checkout or its local origin) or else CX_SOURCE_DIR. Exits 0 on success, 1 on a mismatch or when
the folder CX_DATA_DIR names is absent; without CX_DATA_DIR a missing folder skips the test with a
message (exit 0).
"""
import calendar
import datetime
import json
import os
import subprocess
import sys
import tempfile
from decimal import Decimal, ROUND_HALF_UP

CALIBRATION_END_DAY = datetime.date(1997, 9, 30)
UNTIL_MS = 875663999999  # 1997-09-30T23:59:59.999Z


def data_dir():
    if os.environ.get("CX_DATA_DIR"):
        return os.path.join(os.environ["CX_DATA_DIR"], "cdnow")
    src = os.environ.get("CX_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    return os.path.normpath(os.path.join(src, "..", "shared", "data", "cdnow"))


def read_purchases(path):
    """[(line_no, customer_int, date, amount_minor)] in file order."""
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            _orig, cid, ymd, _cds, dollars = parts
            d = datetime.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:8]))
            cents = int((Decimal(dollars) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            rows.append((n, int(cid), d, cents))
    return rows


def event_line(n, cid, d, cents):
    ts = calendar.timegm((d.year, d.month, d.day, 12, 0, 0)) * 1000
    return json.dumps({"event_type": "purchase", "event_id": "cdnow-%d" % n, "customer_id": "c%05d" % cid,
                       "ts": ts, "title_id": None, "kind": "PURCHASE", "amount_minor": cents,
                       "currency": "USD", "campaign_code": None}, separators=(",", ":"))


def replay(binary, rows, outdir, until=None):
    inp = os.path.join(outdir, "input.jsonl")
    with open(inp, "w") as f:
        for r in rows:
            f.write(event_line(*r) + "\n")
    cmd = [binary, "replay", "--input", inp, "--output", outdir]
    if until is not None:
        cmd += ["--until", str(until)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("FAIL: %s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    with open(os.path.join(outdir, "profiles.jsonl")) as f:
        profiles = {j["customer_id"]: j for j in map(json.loads, f)}
    with open(os.path.join(outdir, "cx.dlq.jsonl")) as f:
        dlq = [l for l in f if l.strip()]
    return profiles, dlq


def main():
    ddir = data_dir()
    if not os.path.isdir(ddir):
        if os.environ.get("CX_DATA_DIR"):
            print("FAIL: CDNOW data folder %s is absent (CX_DATA_DIR; cmake -DCX_DATA_DIR=... names it)" % ddir)
            return 1
        print("SKIP: CDNOW data folder %s is absent" % ddir)
        return 0
    binary = os.environ.get("CXSTREAM")
    if not binary:
        print("FAIL: CXSTREAM (path of the cxstream binary) is not set")
        return 1
    rows = read_purchases(os.path.join(ddir, "CDNOW_sample.txt"))
    failures = []

    # (a) full replay: lifetime totals against a straight tally
    tally = {}
    for _n, cid, _d, cents in rows:
        t = tally.setdefault("c%05d" % cid, [0, 0])
        t[0] += 1
        t[1] += cents
    with tempfile.TemporaryDirectory(prefix="cx-cdnow-") as tmp:
        profiles, dlq = replay(binary, rows, tmp)
    bad = [c for c, (n, m) in tally.items()
           if c not in profiles or profiles[c]["purchases_total"] != n or profiles[c]["revenue_total_minor"] != m]
    print("full replay: %d purchases, %d customers in file, %d profiles, %d DLQ lines, revenue %d minor "
          "(file %d)" % (len(rows), len(tally), len(profiles), len(dlq),
                         sum(p["revenue_total_minor"] for p in profiles.values()),
                         sum(m for _n, m in tally.values())))
    if dlq:
        failures.append("full replay: %d lines went to the DLQ, first: %s" % (len(dlq), dlq[0].strip()))
    if len(profiles) != 2357 or len(tally) != 2357:
        failures.append("full replay: %d profiles, %d customers in the file, expected 2357" % (len(profiles), len(tally)))
    if bad:
        c = bad[0]
        failures.append("full replay: %d customers' totals differ from the file, first %s: file %s, profile %s" %
                        (len(bad), c, tally[c], profiles.get(c) and
                         (profiles[c]["purchases_total"], profiles[c]["revenue_total_minor"])))

    # (b) calibration replay against the published summary
    calib = [r for r in rows if r[2] <= CALIBRATION_END_DAY]
    summary = {}
    with open(os.path.join(ddir, "cdnow_customers_summary.csv")) as f:
        next(f)
        for line in f:
            i, x, tx, T = line.strip().split(",")
            summary["c%05d" % int(i)] = (int(x), Decimal(tx), Decimal(T))
    with tempfile.TemporaryDirectory(prefix="cx-cdnow-cal-") as tmp:
        profiles, dlq = replay(binary, calib, tmp, UNTIL_MS)

    def weeks(days):
        return (Decimal(days) / 7).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    mism = {"x": [], "t_x": [], "T": [], "missing": []}
    for c, (x, tx, T) in summary.items():
        p = profiles.get(c)
        if p is None:
            mism["missing"].append(c)
            continue
        if p["bgnbd_x"] != x:
            mism["x"].append((c, x, p["bgnbd_x"]))
        if weeks(p["bgnbd_t_x_days"]) != tx:
            mism["t_x"].append((c, tx, p["bgnbd_t_x_days"]))
        if weeks(p["bgnbd_T_days"]) != T:
            mism["T"].append((c, T, p["bgnbd_T_days"]))
    repeaters = sum(1 for p in profiles.values() if p["bgnbd_x"] > 0)
    print("calibration replay: %d purchases up to %s, %d profiles, %d summary rows, %d with x > 0 "
          "(paper: 946), sum x %d (summary %d), DLQ %d" %
          (len(calib), CALIBRATION_END_DAY, len(profiles), len(summary), repeaters,
           sum(p["bgnbd_x"] for p in profiles.values()), sum(v[0] for v in summary.values()), len(dlq)))
    print("calibration mismatches: x %d, t_x %d, T %d, missing %d" %
          (len(mism["x"]), len(mism["t_x"]), len(mism["T"]), len(mism["missing"])))
    if len(profiles) != len(summary):
        failures.append("calibration: %d profiles for %d summary rows" % (len(profiles), len(summary)))
    if dlq:
        failures.append("calibration: %d DLQ lines" % len(dlq))
    for k, v in mism.items():
        if v:
            failures.append("calibration: %d %s mismatches, first (customer, expected, got): %s" % (len(v), k, v[:3]))

    for f in failures:
        print("FAIL:", f)
    print("%d passed, %d failed" % (0 if failures else 1, 1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
