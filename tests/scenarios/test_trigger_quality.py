#!/usr/bin/env python3
"""Precision and recall of STOPPED_STREAMING against the generator's ground truth, without Kafka.

`cxstream gen --output` writes a population with known churners (truth: churn_ts), `cxstream
replay --until <period end>` runs the pipeline with the DEFAULT settings, and every
STOPPED_STREAMING trigger of a judged customer is scored (DESIGN §6):
  - judged customers: at least inactivity.min_play_days (3) play days (days with a play of at least
    retrieval.min_seconds = 120 s), counted from the generated events; customers whose truth marks a
    holiday break (pause_ts not null, docs/generator.md) are left out: they really stop streaming for
    2-4 weeks, so a trigger is right about the silence, yet they have not churned;
  - TP: a trigger whose customer churned at or before the trigger's ts; FP: any other trigger;
  - recall = judged churners with a TP / judged churners whose trigger could have come due inside the
    period (churn day + GRACE_DAYS <= period end, room for a slow cadence's k x usual gap); FN = the
    rest of them.
Both must be >= 0.9. Environment: CXSTREAM (the binary), CX_BINARY_DIR (work space, else the temp
dir); TRIG_CUSTOMERS / TRIG_DAYS / TRIG_SEED override the population. Standard library only.
"""
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

DAY_MS = 86_400_000
MIN_PLAY_DAYS = 3      # inactivity.min_play_days default
RETRIEVAL_S = 120      # retrieval.min_seconds default
GRACE_DAYS = 45        # a churner must have had this long before the end to count for recall
MIN_PRECISION = 0.9
MIN_RECALL = 0.9


def judge(events_path, truth, triggers, days):
    """Scores STOPPED_STREAMING triggers ((customer_id, kind, ts) tuples) against the truth, with the
    play days read from the generated replay lines at events_path; prints the counts and returns
    (ok, precision, recall). Shared with tests/system/test_triggers.py."""
    start = truth["options"]["start_ts"]
    end = start + days * DAY_MS
    play_days = collections.defaultdict(set)
    with open(events_path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("event_type") == "play" and r.get("seconds_watched", 0) >= RETRIEVAL_S:
                play_days[r["customer_id"]].add(r["ts"] // DAY_MS)
    tc = truth["customers"]
    paused = {c for c, t in tc.items() if t.get("pause_ts") is not None}
    judged = {c for c, d in play_days.items() if len(d) >= MIN_PLAY_DAYS and c not in paused}
    churn_ts = {c: t["churn_ts"] for c, t in tc.items() if t.get("churn_ts") is not None}

    trig = collections.defaultdict(list)
    paused_trig = 0
    for cust, kind, ts in triggers:
        if kind != "STOPPED_STREAMING":
            continue
        if cust in judged:
            trig[cust].append(ts)
        elif cust in paused:
            paused_trig += 1

    def correct(c, t):
        return c in churn_ts and churn_ts[c] <= t

    tp = sum(1 for c, ts in trig.items() for t in ts if correct(c, t))
    fp = sum(1 for c, ts in trig.items() for t in ts if not correct(c, t))
    wrong = collections.Counter(tc[c]["archetype"] for c, ts in trig.items() for t in ts if not correct(c, t))
    due = [c for c in judged if c in churn_ts and churn_ts[c] + GRACE_DAYS * DAY_MS <= end]
    found = {c for c in due if any(correct(c, t) for t in trig.get(c, []))}
    fn = len(due) - len(found)
    missed = collections.Counter(tc[c]["archetype"] for c in due if c not in found)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = len(found) / len(due) if due else 0.0
    print(f"judged customers={len(judged)} (left out: {len(paused)} on a recorded holiday, with "
          f"{paused_trig} STOPPED_STREAMING)")
    print(f"STOPPED_STREAMING: TP={tp} FP={fp} FN={fn} churners due={len(due)}")
    print(f"precision={precision:.4f} recall={recall:.4f} (required >= {MIN_PRECISION} and >= {MIN_RECALL})")
    if wrong:
        print("false positives by archetype:", dict(wrong))
    if missed:
        print("missed churners by archetype:", dict(missed))
    ok = tp + fp > 0 and len(due) > 0 and precision >= MIN_PRECISION and recall >= MIN_RECALL
    return ok, precision, recall


def main():
    exe = os.environ.get("CXSTREAM", "cxstream")
    customers = int(os.environ.get("TRIG_CUSTOMERS", "3000"))
    days = int(os.environ.get("TRIG_DAYS", "180"))
    seed = os.environ.get("TRIG_SEED", "7")
    base = os.environ.get("CX_BINARY_DIR") or tempfile.gettempdir()
    work = tempfile.mkdtemp(prefix="trigq-", dir=base)
    ev, truth_f, out = (os.path.join(work, n) for n in ("events.jsonl", "truth.json", "out"))
    subprocess.run([exe, "gen", "--output", ev, "--customers", str(customers), "--days", str(days),
                    "--seed", seed, "--invalid-rate", "0", "--truth", truth_f], check=True)
    with open(truth_f) as f:
        truth = json.load(f)
    end = truth["options"]["start_ts"] + days * DAY_MS
    subprocess.run([exe, "replay", "--input", ev, "--output", out, "--until", str(end)], check=True)
    triggers = []
    with open(os.path.join(out, "cx.disengagement_triggers.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            triggers.append((r["customer_id"], r["kind"], r["ts"]))
    print(f"population: customers={customers} days={days} seed={seed} (replay, default settings)")
    ok, _, _ = judge(ev, truth, triggers, days)
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work files kept in {work}")
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
