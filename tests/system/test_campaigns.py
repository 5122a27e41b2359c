"""System test of campaign measurement on a real broker (issue 3, DESIGN §2 and §6).

The test writes its own input with cxtest's Avro encoder (not `cxstream gen`, so that the
population and the edge cases are chosen here): a WIN_BACK campaign sent to 50,000 customers with
a 10 % control group, and a NEWSLETTER campaign whose windows overlap it for 10,000 of them (plus
2,000 others); repeated sends (some switching group), sends outside the campaign period,
per-recipient codes; background plays and purchases of every customer before, inside and after
the windows, extra hard responses (promoted titles, codes) that make the mailing work, responses
exactly at a window's end and 1 ms after it, codes used before the send, short plays that are no
transaction; and, 30 days after the start, one short play in every partition so that every
partition's watermark passes every window end (a partition that receives nothing would keep the
campaigns open, DESIGN §2).

The expected results are an INDEPENDENT tally computed here in Python from the produced events
(DESIGN §6's rules re-implemented, not the processor's code): per campaign sent_test/control,
responders any/hard per group, retrievals, purchases, turnover, revenue per responder, rates, lift
and the pooled two-proportion z-test p-value (to 1e-9), the close instant, and every
CampaignResponse record. `cxstream run` consumes everything; the latest cx.campaign_kpis record of
each campaign must be closed and equal the tally, and cx.campaign_responses must hold exactly the
expected responses.

Then the crash test: a fresh group, state dir and output topics; kill -9 as soon as an interim KPI
record shows the merged watermark in the middle of the observation window (the committed offsets
lag behind: what was processed since the last commit is processed again); restart on the same
state dir.
The final KPIs must be exactly the same; responses may repeat (outputs after the last durable
flush are produced again with the same response_id): every repeat must be an exact duplicate, and
their number is reported.

Scale: CX_CAMPAIGN_RECIPIENTS (default 50000). Prints recipients, responders, lift, p-value, wall
time and the duplicates after the crash."""
import cxtest  # first: re-execs under .venv/bin/python when needed

import math
import os
import random
import shutil
import tempfile
import time
from collections import Counter, defaultdict

from confluent_kafka import Consumer, TopicPartition

from cxtest import Broker, CxProcess, consume_all, wait_for, write_config

PARTITIONS = 4
RECIPIENTS = int(os.environ.get("CX_CAMPAIGN_RECIPIENTS", "50000"))
CONTROL_SHARE = 0.10
SEED = 20250106
DONE_TIMEOUT_S = float(os.environ.get("CX_CAMPAIGN_TIMEOUT_S", "180"))

DAY = 86_400_000
HOUR = 3_600_000
T0 = 1736121600000  # 2025-01-06T00:00:00Z
MIN_SECONDS = 120   # retrieval.min_seconds (default)

CAMP_A = {"campaign_id": "camp-wb-50k", "name": "Win-back January", "type": "WIN_BACK",
          "start_ts": T0 + 1 * DAY, "end_ts": T0 + 3 * DAY, "observation_days": 14,
          "promoted_title_ids": ["t-promo-1", "t-promo-2"], "campaign_code": "WB10"}
CAMP_B = {"campaign_id": "camp-nl-12k", "name": "Newsletter week 2", "type": "NEWSLETTER",
          "start_ts": T0 + 5 * DAY, "end_ts": T0 + 6 * DAY, "observation_days": 7,
          "promoted_title_ids": ["t-promo-3", "t-promo-1"], "campaign_code": None}
CAMPAIGNS = {c["campaign_id"]: c for c in (CAMP_A, CAMP_B)}
TAIL_TS = T0 + 30 * DAY
TYPE_RANK = {"email_send": 0, "purchase": 1, "play": 2}  # DESIGN §2 tie order
TOPIC = {"email_send": "cx.email_send", "purchase": "cx.purchase", "play": "cx.play"}
SCHEMA = {"email_send": 3, "purchase": 2, "play": 1}

_env = {}


def log(msg):
    print(f"  {msg}", flush=True)


# --- the input ------------------------------------------------------------------------------------

class Gen:
    """Builds every input event; timestamps are unique per customer, so a customer's order is
    unambiguous (the processor's order within a partition is event time)."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.events = []                 # dicts: type, ts, customer_id, record
        self.used = defaultdict(set)     # customer -> used ts
        self.n = 0

    def ts(self, cid, lo, hi):
        """A ts in [lo, hi] not yet used by cid."""
        while True:
            t = self.rng.randint(lo, hi)
            if t not in self.used[cid]:
                self.used[cid].add(t)
                return t

    def exact(self, cid, t):
        """Reserve exactly t for cid (False when taken)."""
        if t in self.used[cid]:
            return False
        self.used[cid].add(t)
        return True

    def _eid(self, kind):
        self.n += 1
        return f"{kind}-{self.n:07d}"

    def send(self, cid, t, camp, group, code=None):
        rec = {"event_id": self._eid("s"), "customer_id": cid, "ts": t, "campaign_id": camp["campaign_id"],
               "group": group, "campaign_code": code, "channel": "EMAIL"}
        self.events.append({"type": "email_send", "ts": t, "customer_id": cid, "record": rec})

    def play(self, cid, t, title, seconds, code=None):
        rec = {"event_id": self._eid("p"), "customer_id": cid, "ts": t, "title_id": title, "genre": "drama",
               "seconds_watched": seconds, "device": "tv", "campaign_code": code}
        self.events.append({"type": "play", "ts": t, "customer_id": cid, "record": rec})

    def purchase(self, cid, t, title, amount, code=None):
        rec = {"event_id": self._eid("b"), "customer_id": cid, "ts": t, "title_id": title,
               "kind": self.rng.choice(["RENTAL", "PURCHASE", "SUBSCRIPTION", "PACKAGE_EXTENSION"]),
               "amount_minor": amount, "currency": "EUR", "campaign_code": code}
        self.events.append({"type": "purchase", "ts": t, "customer_id": cid, "record": rec})


def generate(recipients, seed):
    g = Gen(seed)
    rng = g.rng
    a_ids = [f"cust-{i:06d}" for i in range(recipients)]
    n_b_in_a = recipients // 5
    b_extra = [f"nlx-{i:05d}" for i in range(recipients // 25)]
    others = [f"other-{i:05d}" for i in range(recipients // 25)]
    a_control = set(rng.sample(a_ids, int(recipients * CONTROL_SHARE)))
    send_code = {}  # (customer, campaign) -> per-recipient code of the latest send

    # campaign A: one send each inside [start, end], 0.2 % of them after end_ts (still counted)
    first_a = {}
    for cid in a_ids:
        if rng.random() < 0.002:
            t = g.ts(cid, CAMP_A["end_ts"] + HOUR, CAMP_A["end_ts"] + DAY)
        else:
            t = g.ts(cid, CAMP_A["start_ts"], CAMP_A["end_ts"])
        code = f"WB-{cid}" if rng.random() < 0.3 else None
        send_code[(cid, "A")] = code
        g.send(cid, t, CAMP_A, "CONTROL" if cid in a_control else "TEST", code)
        first_a[cid] = t
    # 2 % get the mail again 1-6 days later (window restarts); a fifth of those switch group
    for cid in rng.sample(a_ids, recipients // 50):
        t = g.ts(cid, first_a[cid] + DAY, first_a[cid] + 6 * DAY)
        grp = "CONTROL" if cid in a_control else "TEST"
        if rng.random() < 0.2:
            grp = "TEST" if grp == "CONTROL" else "CONTROL"
        g.send(cid, t, CAMP_A, grp, send_code[(cid, "A")])
        first_a[cid] = max(first_a[cid], t)

    # campaign B, overlapping A's windows for a fifth of A's recipients, plus customers of its own
    b_ids = rng.sample(a_ids, n_b_in_a) + b_extra
    b_control = set(rng.sample(b_ids, int(len(b_ids) * CONTROL_SHARE)))
    first_b = {}
    for cid in b_ids:
        t = g.ts(cid, CAMP_B["start_ts"], CAMP_B["end_ts"])
        code = f"NL-{cid}" if rng.random() < 0.5 else None
        send_code[(cid, "B")] = code
        g.send(cid, t, CAMP_B, "CONTROL" if cid in b_control else "TEST", code)
        first_b[cid] = t

    def code_for(cid):
        x = rng.random()
        if x < 0.01:
            return "WB10"
        if x < 0.02:
            return send_code.get((cid, "A")) or "WB10"
        if x < 0.025:
            return send_code.get((cid, "B")) or "NOPE"
        if x < 0.03:
            return "BOGUS"
        return None

    def title():
        return rng.choice(["t-promo-1", "t-promo-2", "t-promo-3"]) if rng.random() < 0.04 \
            else f"t-{rng.randint(1, 400):04d}"

    def seconds():
        x = rng.random()
        if x < 0.02:
            return MIN_SECONDS          # exactly the threshold: a transaction
        if x < 0.04:
            return MIN_SECONDS - 1      # just below: plays_total only
        if x < 0.35:
            return rng.randint(5, MIN_SECONDS - 1)
        return rng.randint(MIN_SECONDS, 7200)

    # background activity of everybody over 25 days (before, inside and after the windows)
    for cid in a_ids + b_extra + others:
        for _ in range(rng.choices([0, 1, 2, 3, 4, 6], [25, 25, 20, 15, 10, 5])[0]):
            g.play(cid, g.ts(cid, T0, T0 + 25 * DAY), title(), seconds(), code_for(cid))
        for _ in range(rng.choices([0, 1, 2], [60, 30, 10])[0]):
            g.purchase(cid, g.ts(cid, T0, T0 + 25 * DAY), None if rng.random() < 0.3 else title(),
                       rng.randint(99, 2999), code_for(cid))

    # the mailing works: extra hard responses, more often in TEST than in CONTROL
    for cid in a_ids:
        p = 0.03 if cid in a_control else 0.09
        if rng.random() < p:
            t = g.ts(cid, first_a[cid], first_a[cid] + 14 * DAY)
            if rng.random() < 0.5:
                g.play(cid, t, rng.choice(CAMP_A["promoted_title_ids"]), rng.randint(600, 6000))
            else:
                g.purchase(cid, t, None, rng.randint(499, 4999), rng.choice(["WB10", send_code[(cid, "A")] or "WB10"]))
    for cid in b_ids:
        if rng.random() < (0.02 if cid in b_control else 0.06):
            t = g.ts(cid, first_b[cid], first_b[cid] + 7 * DAY)
            g.play(cid, t, "t-promo-3", rng.randint(600, 6000), send_code[(cid, "B")])

    # window edges on campaign A: exactly at s + 14 d (inside), 1 ms after (outside), a code
    # used an hour before the (latest) send (not hard for it)
    for cid in rng.sample(a_ids, 300):
        end = first_a[cid] + 14 * DAY
        if g.exact(cid, end):
            g.purchase(cid, end, None, 1234, "WB10")
        if g.exact(cid, end + 1):
            g.play(cid, end + 1, "t-promo-2", 900)
        if rng.random() < 0.5 and g.exact(cid, first_a[cid] - HOUR):
            g.purchase(cid, first_a[cid] - HOUR, "t-promo-1", 777, "WB10")

    # the tail: one short play (no transaction) in every partition, past every window end
    for p in range(PARTITIONS):
        k = 0
        while cxtest.partition_of(f"tail-{p}-{k}", PARTITIONS) != p:
            k += 1
        cid = f"tail-{p}-{k}"
        g.exact(cid, TAIL_TS)
        g.play(cid, TAIL_TS, "t-0001", 30)
    return g.events


# --- the independent tally (DESIGN §6) ------------------------------------------------------------

def tally(events):
    """Expected KPIs per campaign and the expected CampaignResponse records, from the events."""
    by_cust = defaultdict(list)
    for ev in events:
        by_cust[ev["customer_id"]].append(ev)
    kpi = {c: {"sent": Counter(), "any": Counter(), "hard": Counter(), "retrievals": 0, "purchases": 0,
               "turnover": 0, "max_due": 0} for c in CAMPAIGNS}
    responses = {}
    for cid, evs in by_cust.items():
        evs.sort(key=lambda e: (e["ts"], TYPE_RANK[e["type"]]))
        cur = {}      # campaign -> the customer's latest send: ts, group, code, event_id
        flags = {}    # campaign -> [responded, hard]
        for ev in evs:
            r = ev["record"]
            if ev["type"] == "email_send":
                c = r["campaign_id"]
                cur[c] = {"ts": r["ts"], "group": r["group"], "code": r["campaign_code"], "id": r["event_id"]}
                flags.setdefault(c, [False, False])
                due = r["ts"] + CAMPAIGNS[c]["observation_days"] * DAY + 1
                kpi[c]["max_due"] = max(kpi[c]["max_due"], due)
                continue
            if ev["type"] == "play" and r["seconds_watched"] < MIN_SECONDS:
                continue  # not a transaction
            t = r["ts"]
            best_hard = best_any = None
            for c, s in cur.items():
                camp = CAMPAIGNS[c]
                if not (s["ts"] <= t <= s["ts"] + camp["observation_days"] * DAY):
                    continue
                code = r["campaign_code"]
                hard = (code is not None and (code == s["code"] or code == camp["campaign_code"])) or \
                    (r["title_id"] is not None and r["title_id"] in camp["promoted_title_ids"])
                if best_any is None or s["ts"] > cur[best_any]["ts"]:
                    best_any = c
                if hard and (best_hard is None or s["ts"] > cur[best_hard]["ts"]):
                    best_hard = c
            c = best_hard if best_hard is not None else best_any
            if c is None:
                continue
            s, hard = cur[c], best_hard is not None
            purchase = ev["type"] == "purchase"
            amount = r["amount_minor"] if purchase else 0
            flags[c][0] = True
            flags[c][1] = flags[c][1] or hard
            if s["group"] == "TEST":
                k = kpi[c]
                if purchase:
                    k["purchases"] += 1
                    k["turnover"] += amount
                else:
                    k["retrievals"] += 1
            responses[r["event_id"]] = {
                "customer_id": cid, "ts": t, "response_id": r["event_id"], "campaign_id": c,
                "send_event_id": s["id"], "response_event_id": r["event_id"],
                "response_type": "HARD" if hard else "SOFT", "action": "PURCHASE" if purchase else "PLAY",
                "amount_minor": amount, "group": s["group"], "latency_ms": t - s["ts"]}
        for c, s in cur.items():  # recipients by the group of their latest send
            k = kpi[c]
            k["sent"][s["group"]] += 1
            if flags[c][0]:
                k["any"][s["group"]] += 1
            if flags[c][1]:
                k["hard"][s["group"]] += 1
    expected = {}
    for c, k in kpi.items():
        nt, nc = k["sent"]["TEST"], k["sent"]["CONTROL"]
        xt, xc = k["any"]["TEST"], k["any"]["CONTROL"]
        rt = xt / nt if nt else 0.0
        rc = xc / nc if nc else 0.0
        lift = (rt - rc) / rc if rc else None
        pval = None
        if nt and nc:
            pool = (xt + xc) / (nt + nc)
            if 0 < pool < 1:
                z = (rt - rc) / math.sqrt(pool * (1 - pool) * (1 / nt + 1 / nc))
                pval = math.erfc(abs(z) / math.sqrt(2))
        camp = CAMPAIGNS[c]
        expected[c] = {
            "campaign_id": c, "sent_test": nt, "sent_control": nc,
            "responders_test_any": xt, "responders_test_hard": k["hard"]["TEST"],
            "responders_control_any": xc, "responders_control_hard": k["hard"]["CONTROL"],
            "retrievals": k["retrievals"], "purchases": k["purchases"], "turnover_minor": k["turnover"],
            "revenue_per_responder_minor": k["turnover"] // xt if xt else 0,
            "response_rate_test": rt, "response_rate_control": rc, "lift": lift, "lift_p_value": pval,
            "closed": True, "as_of_ts": max(camp["end_ts"] + 1, k["max_due"])}
    return expected, responses


# --- setup ----------------------------------------------------------------------------------------

def setup():
    if _env:
        return _env
    tmp = tempfile.mkdtemp(prefix="cx-campaigns-")
    t0 = time.monotonic()
    b = Broker(partitions=PARTITIONS).start()
    _env.update(broker=b, tmp=tmp)
    log(f"broker up in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    events = generate(RECIPIENTS, SEED)
    expected, responses = tally(events)
    gen_s = time.monotonic() - t0
    t0 = time.monotonic()
    camps = [(c["campaign_id"], cxtest.encode(5, c)) for c in (CAMP_A, CAMP_B)]
    b.produce("cx.campaigns", camps)
    # each topic in event-time order, one idempotent producer: offsets follow that order
    pos = {}  # (topic, partition) -> [ts of offset 0, 1, ...]
    per_topic = defaultdict(list)
    for ev in events:
        per_topic[ev["type"]].append(ev)
    for kind, evs in per_topic.items():
        evs.sort(key=lambda e: e["ts"])
        b.produce(TOPIC[kind], ((e["customer_id"], cxtest.encode(SCHEMA[kind], e["record"])) for e in evs),
                  timeout_s=120, conf={"enable.idempotence": True, "linger.ms": 20})
        for e in evs:
            pos.setdefault((TOPIC[kind], cxtest.partition_of(e["customer_id"], PARTITIONS)), []).append(e["ts"])
    hw = high_watermarks(b.bootstrap)
    assert sum(hw.values()) == len(events), (sum(hw.values()), len(events))
    for (t, p), lst in pos.items():
        assert hw[(t, p)] == len(lst), (t, p, hw[(t, p)], len(lst))
    log(f"input: {len(events)} events ({Counter(e['type'] for e in events)}) generated and tallied in "
        f"{gen_s:.1f} s, produced in {time.monotonic() - t0:.1f} s")
    for c, e in expected.items():
        log(f"tally {c}: sent test/control {e['sent_test']}/{e['sent_control']}, responders any "
            f"{e['responders_test_any']}/{e['responders_control_any']}, hard {e['responders_test_hard']}/"
            f"{e['responders_control_hard']}, lift {e['lift']:.4f}, p-value {e['lift_p_value']:.3e}; "
            f"{sum(1 for r in responses.values() if r['campaign_id'] == c)} responses")
    _env.update(events=events, expected=expected, responses=responses, hw=hw, pos=pos)
    return _env


def teardown():
    if "broker" in _env:
        _env["broker"].stop()
    if "tmp" in _env and os.environ.get("CX_KEEP_FAILED") != "1":
        shutil.rmtree(_env["tmp"], ignore_errors=True)
    _env.clear()


def _consumer(bootstrap, group="cx-campaigns-admin"):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})


def high_watermarks(bootstrap):
    c = _consumer(bootstrap)
    try:
        return {(t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                for t in cxtest.INPUT_TOPICS for p in range(PARTITIONS)}
    finally:
        c.close()


def committed(bootstrap, group):
    c = _consumer(bootstrap, group)
    try:
        tps = [TopicPartition(t, p) for t in cxtest.INPUT_TOPICS for p in range(PARTITIONS)]
        return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in c.committed(tps, timeout=10)}
    finally:
        c.close()


def has_leaders(bootstrap, topic):
    c = _consumer(bootstrap)
    try:
        t = c.list_topics(topic, timeout=10).topics.get(topic)
        return t is not None and t.error is None and t.partitions and \
            all(pm.leader >= 0 and pm.error is None for pm in t.partitions.values())
    finally:
        c.close()


def config(env, name):
    """Own group, state dir and output/internal topics per run, so the two runs do not mix."""
    state = os.path.join(env["tmp"], f"state-{name}")
    path = os.path.join(env["tmp"], f"{name}.properties")
    props = {
        "bootstrap.servers": env["broker"].bootstrap,
        "group.id": f"cx-campaigns-{name}",
        "state.dir": state,
        "commit.interval_ms": 500,
        "http.port": 0,
        "log.level": "info",
        "statistics.interval_ms": 0,
        "kafka.session.timeout.ms": 6000,
    }
    b = env["broker"]
    for t in ("segment_changes", "disengagement_triggers", "campaign_responses", "campaign_kpis", "enriched",
              "dlq", "changelog", "partials"):
        props[f"topic.{t}"] = f"{name}.{t}"
        # created here, leaders elected, before the processor starts (restoring from a changelog
        # partition whose leader is not yet known fails the start: "Not leader for partition")
        compact = t in ("campaign_kpis", "changelog", "partials")
        b.create_topic(f"{name}.{t}", 1 if t == "partials" else PARTITIONS,
                       {"cleanup.policy": "compact"} if compact else {})
        wait_for(lambda: has_leaders(b.bootstrap, f"{name}.{t}"), timeout_s=30, what=f"leaders of {name}.{t}")
    write_config(path, props)
    return path, f"cx-campaigns-{name}"


def start_run(cfg_path, name, env):
    return CxProcess(["run", "-c", cfg_path], log_path=os.path.join(env["tmp"], f"run-{name}.log"))


def wait_done(bootstrap, group, hw, proc, timeout_s):
    def done():
        if not proc.alive():
            raise RuntimeError(f"cxstream run exited {proc.proc.returncode}:\n{proc.log()[-4000:]}")
        got = committed(bootstrap, group)
        return all(got[k] == v for k, v in hw.items())
    wait_for(done, timeout_s=timeout_s, interval_s=0.25, what=f"group {group} at the high watermarks")


# --- checks ---------------------------------------------------------------------------------------

KPI_FIELDS = ("sent_test", "sent_control", "responders_test_any", "responders_test_hard",
              "responders_control_any", "responders_control_hard", "retrievals", "purchases",
              "turnover_minor", "revenue_per_responder_minor", "closed", "as_of_ts")


def read_kpis(bootstrap, name):
    """{campaign: latest record} and {campaign: [closed records]}."""
    latest, closed = {}, defaultdict(list)
    for r in consume_all(bootstrap, f"{name}.campaign_kpis", timeout_s=60):
        sid, v = cxtest.decode(r.value)
        assert sid == 13 and r.key == v["campaign_id"], (sid, r.key, v)
        latest[r.key] = v
        if v["closed"]:
            closed[r.key].append(v)
    return latest, closed


def check_kpis(got, closed, expected, repeats_allowed=False):
    """The latest record of each campaign is closed and equals the tally; one closed record per
    campaign (with repeats_allowed, after a crash: several, all exactly equal)."""
    assert set(got) == set(expected), f"KPI records for {sorted(got)}, expected {sorted(expected)}"
    for c, e in expected.items():
        g = got[c]
        assert len(closed[c]) == 1 or (repeats_allowed and closed[c] and all(v == g for v in closed[c])), \
            f"{c}: closed records {closed[c]}"
        diff = {f: (g[f], e[f]) for f in KPI_FIELDS if g[f] != e[f]}
        assert not diff, f"{c}: KPI (got, tally) differ: {diff}"
        assert g["ts"] == g["as_of_ts"], g
        for f in ("response_rate_test", "response_rate_control"):
            assert abs(g[f] - e[f]) <= 1e-12, (c, f, g[f], e[f])
        for f in ("lift", "lift_p_value"):
            assert (g[f] is None) == (e[f] is None), (c, f, g[f], e[f])
            if e[f] is not None:
                assert abs(g[f] - e[f]) <= 1e-9, (c, f, g[f], e[f])


def read_responses(bootstrap, name):
    """(distinct responses by response_id, number of exact repeats); a repeat that differs fails."""
    seen, repeats, n = {}, 0, 0
    for r in consume_all(bootstrap, f"{name}.campaign_responses", timeout_s=120):
        sid, v = cxtest.decode(r.value)
        assert sid == 12 and r.key == v["customer_id"], (sid, r.key, v)
        assert r.partition == cxtest.partition_of(r.key, PARTITIONS), (r.partition, r.key)
        n += 1
        if v["response_id"] in seen:
            repeats += 1
            assert v == seen[v["response_id"]], f"repeat differs:\n{seen[v['response_id']]}\n{v}"
        else:
            seen[v["response_id"]] = v
    return seen, repeats, n


def check_responses(got, expected):
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing, f"{len(missing)} expected responses missing, e.g. {[expected[k] for k in missing[:3]]}"
    assert not extra, f"{len(extra)} unexpected responses, e.g. {[got[k] for k in extra[:3]]}"
    bad = [(got[k], expected[k]) for k in expected if got[k] != expected[k]]
    assert not bad, f"{len(bad)} responses differ (got, expected): {bad[:3]}"


def summary(expected):
    for c, e in expected.items():
        log(f"{c}: recipients {e['sent_test'] + e['sent_control']} (test {e['sent_test']}, control "
            f"{e['sent_control']}); responders test {e['responders_test_any']} (hard "
            f"{e['responders_test_hard']}), control {e['responders_control_any']} (hard "
            f"{e['responders_control_hard']}); rates {e['response_rate_test']:.4f} vs "
            f"{e['response_rate_control']:.4f}; lift {e['lift']:.4f}, p-value {e['lift_p_value']:.6g}; "
            f"retrievals {e['retrievals']}, purchases {e['purchases']}, turnover {e['turnover_minor']}, "
            f"revenue/responder {e['revenue_per_responder_minor']}")


# --- tests ----------------------------------------------------------------------------------------

def test_live_run_kpis_and_responses_equal_independent_tally():
    env = setup()
    b = env["broker"]
    cfg_path, group = config(env, "live")
    t0 = time.monotonic()
    proc = start_run(cfg_path, "live", env)
    try:
        wait_done(b.bootstrap, group, env["hw"], proc, DONE_TIMEOUT_S)
        wall = time.monotonic() - t0
    finally:
        rc = proc.stop()
    assert rc == 0, f"cxstream run exited {rc}:\n{proc.log()[-3000:]}"
    log(f"live run: {len(env['events'])} events, wall {wall:.1f} s (start to all committed)")
    got, closed = read_kpis(b.bootstrap, "live")
    check_kpis(got, closed, env["expected"])
    seen, repeats, n = read_responses(b.bootstrap, "live")
    assert repeats == 0, f"{repeats} repeated responses without a crash"
    check_responses(seen, env["responses"])
    summary(env["expected"])
    log(f"cx.campaign_kpis: closed records equal the tally; cx.campaign_responses: {n} records, "
        f"exactly the {len(env['responses'])} expected")


def event_time_at(env, offsets):
    """The event time up to which `offsets` (committed, per input partition) cover every partition:
    min over partitions of the largest ts committed in any of its topics."""
    out = []
    for p in range(PARTITIONS):
        last = [env["pos"][(t, p)][offsets[(t, p)] - 1] for t in ("cx.email_send", "cx.play", "cx.purchase")
                if offsets.get((t, p), 0) > 0]
        out.append(max(last) if last else T0)
    return min(out)


class KpiWatch:
    """Follows a KPI topic's partition of one campaign as records arrive (interim records carry
    the merged watermark in as_of_ts, so they tell how far event time has got)."""

    def __init__(self, bootstrap, topic, campaign):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": "cx-campaigns-watch",
                           "enable.auto.commit": False, "fetch.wait.max.ms": 5,
                           "isolation.level": "read_uncommitted"})
        self.c.assign([TopicPartition(topic, cxtest.partition_of(campaign, PARTITIONS), 0)])
        self.campaign = campaign
        self.as_of = None

    def poll(self):
        for m in self.c.consume(num_messages=1000, timeout=0.005):
            if m.error() is None and m.key() == self.campaign.encode():
                self.as_of = cxtest.decode(m.value())[1]["as_of_ts"]
        return self.as_of

    def close(self):
        self.c.close()


def test_kill_9_mid_window_and_restart_gives_the_same_kpis():
    env = setup()
    b = env["broker"]
    cfg_path, group = config(env, "crash")
    first_send = CAMP_A["start_ts"]
    last_end = env["expected"][CAMP_A["campaign_id"]]["as_of_ts"]
    mid = T0 + 10 * DAY  # inside the observation windows of campaign A's sends
    watch = KpiWatch(b.bootstrap, "crash.campaign_kpis", CAMP_A["campaign_id"])
    t0 = time.monotonic()
    proc = start_run(cfg_path, "crash-1", env)
    try:
        def mid_window():
            if not proc.alive():
                raise RuntimeError(f"cxstream run exited {proc.proc.returncode}:\n{proc.log()[-3000:]}")
            w = watch.poll()
            return w is not None and w >= mid
        wait_for(mid_window, timeout_s=DONE_TIMEOUT_S, interval_s=0.001, what="a KPI record as of mid-window")
    finally:
        proc.kill()
        seen_as_of = watch.as_of
        watch.close()
    at_commit = event_time_at(env, committed(b.bootstrap, group))
    log(f"killed with SIGKILL {time.monotonic() - t0:.1f} s after start, on a KPI record as of day "
        f"{(seen_as_of - T0) / DAY:.2f}; committed event time: day {(at_commit - T0) / DAY:.2f} (campaign A "
        f"sends from day {(first_send - T0) / DAY:.0f}, its last window ends day {(last_end - T0) / DAY:.2f})")
    assert first_send < seen_as_of < last_end and at_commit < last_end, \
        "the kill was not inside the observation window"
    got_before, _ = read_kpis(b.bootstrap, "crash")
    assert not got_before[CAMP_A["campaign_id"]]["closed"], got_before
    proc2 = start_run(cfg_path, "crash-2", env)
    try:
        wait_done(b.bootstrap, group, env["hw"], proc2, DONE_TIMEOUT_S)
    finally:
        rc = proc2.stop()
    assert rc == 0, f"restarted cxstream run exited {rc}:\n{proc2.log()[-3000:]}"
    log(f"restart finished: total wall {time.monotonic() - t0:.1f} s")
    got, closed = read_kpis(b.bootstrap, "crash")
    check_kpis(got, closed, env["expected"], repeats_allowed=True)
    closed_repeats = sum(len(v) - 1 for v in closed.values())
    seen, repeats, n = read_responses(b.bootstrap, "crash")
    check_responses(seen, env["responses"])
    log(f"after the crash: closed KPIs exactly equal the tally; cx.campaign_responses: {n} records, "
        f"{len(seen)} distinct (= expected), {repeats} exact duplicates; {closed_repeats} repeated closed "
        f"KPI records (exact)")


if __name__ == "__main__":
    try:
        cxtest.main(globals())
    finally:
        teardown()
