#!/usr/bin/env python3
"""Precision and recall of STOPPED_STREAMING against the generator's ground truth, without Kafka.

`cxstream gen --output` writes a population with known churners (truth: churn_day), `cxstream
replay --until <period end>` runs the pipeline with the default settings, and every
STOPPED_STREAMING trigger is judged (DESIGN §6: quality is judged on customers with at least
inactivity.min_play_days play days):
  - correct (true positive) when the customer churned at or before the trigger's ts;
  - precision = correct triggers / all triggers of the judged customers;
  - recall = judged churners with a correct trigger / judged churners whose trigger could have come
    due inside the period: churn_day + GRACE_DAYS <= period end, where GRACE_DAYS leaves room for a
    slow cadence's k x usual gap.
Both must be >= 0.9. Environment: CXSTREAM (the binary), CX_BINARY_DIR (work space);
TRIG_CUSTOMERS / TRIG_DAYS / TRIG_SEED override the population.
"""
import collections
import json
import os
import subprocess
import sys
import tempfile

DAY_MS = 86_400_000
MIN_PLAY_DAYS = 3      # inactivity.min_play_days default
RETRIEVAL_S = 120      # retrieval.min_seconds default
GRACE_DAYS = 45        # a churner must have had this long before the end to count for recall


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
    truth = json.load(open(truth_f))
    start = truth["options"]["start_ts"]
    end = start + days * DAY_MS
    subprocess.run([exe, "replay", "--input", ev, "--output", out, "--until", str(end)], check=True)

    play_days = collections.defaultdict(set)
    with open(ev) as f:
        for line in f:
            r = json.loads(line)
            if r.get("event_type") == "play" and r.get("seconds_watched", 0) >= RETRIEVAL_S:
                play_days[r["customer_id"]].add(r["ts"] // DAY_MS)
    judged = {c for c, d in play_days.items() if len(d) >= MIN_PLAY_DAYS}
    churn_ts = {c: t["churn_ts"] for c, t in truth["customers"].items() if t.get("churn_ts") is not None}

    trig = collections.defaultdict(list)
    with open(os.path.join(out, "cx.disengagement_triggers.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r["kind"] == "STOPPED_STREAMING" and r["customer_id"] in judged:
                trig[r["customer_id"]].append(r["ts"])

    n_trig = sum(len(v) for v in trig.values())
    correct = sum(1 for c, ts in trig.items() for t in ts if c in churn_ts and churn_ts[c] <= t)
    wrong = collections.Counter(truth["customers"][c]["archetype"] for c, ts in trig.items() for t in ts
                                if not (c in churn_ts and churn_ts[c] <= t))
    due = [c for c in judged if c in churn_ts and churn_ts[c] + GRACE_DAYS * DAY_MS <= end]
    found = [c for c in due if any(churn_ts[c] <= t for t in trig.get(c, []))]
    missed = collections.Counter(truth["customers"][c]["archetype"] for c in due if c not in found)
    precision = correct / n_trig if n_trig else 0.0
    recall = len(found) / len(due) if due else 0.0
    print(f"customers={customers} days={days} judged={len(judged)} churners_due={len(due)} "
          f"stopped_triggers={n_trig} correct={correct}")
    print(f"precision={precision:.4f} recall={recall:.4f}")
    if wrong:
        print("false positives by archetype:", dict(wrong))
    if missed:
        print("missed churners by archetype:", dict(missed))
    ok = n_trig > 0 and len(due) > 0 and precision >= 0.9 and recall >= 0.9
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
