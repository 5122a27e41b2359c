#!/usr/bin/env python3
"""Browser test of the dashboard: a real headless Chromium loads / from a running `cxstream demo`.

It starts `cxstream demo --seconds 40 --customers 300 --http-port P` (a small population, so the
generator finishes within seconds and the figures then stand still), waits for /readyz and for
/stats to stop moving, then lets Chromium run the page (--dump-dom with a virtual-time budget, so
the page's own fetches and refreshes run) and checks that the segment table it rendered is filled
and agrees cell by cell with the /segments JSON: customers, share, average monetary and CLV, NPS
with its interval, responses, triggers and response rate, formatted as the page formats them; the
touchpoint table agrees with /segments' touchpoints; the themes column agrees with
/segments/{name}/themes. Finally it saves a screenshot (test-output/dashboard.png under
$CX_BINARY_DIR, or tests/output/ without it) and checks it is a non-trivial PNG.
"""
import cxtest  # noqa: F401  (first: re-executes under the project's venv when needed)

import html.parser
import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
import urllib.request
from decimal import ROUND_HALF_UP, Decimal

from cxtest import CxProcess, wait_for

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return json.loads(r.read())


def output_dir():
    b = os.environ.get("CX_BINARY_DIR")
    d = os.path.join(b, "test-output") if b else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "output")
    os.makedirs(d, exist_ok=True)
    return d


def chromium(args, profile_dir, timeout_s=90):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium not installed (tools/setup.sh installs Debian's chromium)"
    cmd = [exe] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile_dir] + args
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout_s)
    assert p.returncode == 0, "chromium failed (%d): %s" % (p.returncode, p.stderr.decode(errors="replace")[-2000:])
    return p.stdout.decode("utf-8")


class TableParser(html.parser.HTMLParser):
    """Rows of <table id=...> tbody as {row key: {cell class: text}}, and the table's data-*."""

    def __init__(self, table_id, row_attr):
        super().__init__()
        self.table_id, self.row_attr = table_id, row_attr
        self.in_table = self.in_tbody = False
        self.depth = 0
        self.rows, self.attrs = {}, {}
        self.row = self.cell = None
        self.cells = []
        self.body_attrs = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body_attrs = a
        if tag == "table" and a.get("id") == self.table_id:
            self.in_table = True
            self.attrs = a
        elif self.in_table and tag == "tbody":
            self.in_tbody = True
        elif self.in_tbody and tag == "tr":
            self.row = a.get(self.row_attr)
            self.cells = []
            if self.row is not None:
                self.rows[self.row] = {}
        elif self.in_tbody and tag == "td" and self.row is not None:
            self.cell = [a.get("class") or "col%d" % len(self.cells), []]
            self.cells.append(self.cell)

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.rows[self.row][self.cell[0]] = "".join(self.cell[1]).strip()
            self.cell = None
        elif tag == "tbody" and self.in_tbody:
            self.in_tbody = False
        elif tag == "table" and self.in_table:
            self.in_table = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[1].append(data)


def parse_table(dom, table_id, row_attr):
    p = TableParser(table_id, row_attr)
    p.feed(dom)
    return p


# the page's formatting (processor/web/index.html), in Python
DASH = "–"


def f_num(v):
    return DASH if v is None else "{:,}".format(v)


def f_pct(v):
    return DASH if v is None else js_fixed(100 * v, 1) + " %"


def f_money(v):
    return DASH if v is None else js_fixed(v / 100, 2)


def f_nps(g):
    if g["nps"] is None:
        return DASH
    return "%.1f (%.1f … %.1f)" % (g["nps"], g["nps_ci_low"], g["nps_ci_high"])


def js_fixed(v, digits):
    """Number.prototype.toFixed: the exact binary value rounded, a tie to the larger magnitude (JS
    86.25.toFixed(1) is "86.3" where Python's "%.1f" gives "86.2", rounding ties to even); a
    negative value gets "-" before its magnitude's digits, -0.0 none."""
    mag = Decimal(abs(v)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return ("-" if v < 0 else "") + format(mag, "f")


def f_nps_js(g):
    if g["nps"] is None:
        return DASH
    return "%s (%s … %s)" % (js_fixed(g["nps"], 1), js_fixed(g["nps_ci_low"], 1), js_fixed(g["nps_ci_high"], 1))


def stable_stats(port, timeout_s=60):
    """Waits until /stats.events is positive and unchanged over two polls 2 s apart."""
    prev = [None]

    def still():
        ev = get_json(port, "/stats")["events"]
        same = ev > 0 and ev == prev[0]
        prev[0] = ev
        return same
    wait_for(still, timeout_s=timeout_s, interval_s=2.0, what="demo figures to stand still")
    return prev[0]


def test_dashboard_table_matches_segments_json():
    port = free_port()
    work = tempfile.mkdtemp(prefix="cx-browser-")
    profile = os.path.join(work, "chromium")
    log = os.path.join(work, "demo.log")
    try:
        with CxProcess(["demo", "--seconds", "40", "--customers", "300", "--http-port", str(port)],
                       cwd=work, log_path=log) as demo:
            def ready():
                try:
                    return get_json(port, "/readyz").get("ready") is True
                except OSError:
                    return False
            wait_for(ready, timeout_s=30, what="/readyz")
            events = stable_stats(port)
            seg = get_json(port, "/segments")
            assert seg["customers"] > 0, seg
            assert any(g["nps"] is not None for g in seg["segments"]), "no segment has an NPS yet"

            dom = chromium(["--virtual-time-budget=9000", "--dump-dom", "http://127.0.0.1:%d/" % port], profile)
            t = parse_table(dom, "segments", "data-segment")
            assert int(t.body_attrs.get("data-ticks", "0")) >= 1, "the page never rendered a poll"
            seg2 = get_json(port, "/segments")
            assert seg2 == seg, "figures moved while the page loaded (events %d)" % events
            assert t.attrs.get("data-watermark") == str(seg["watermark_ts"]), (t.attrs, seg["watermark_ts"])
            assert t.attrs.get("data-customers") == str(seg["customers"])
            names = [g["segment"] for g in seg["segments"]]
            assert list(t.rows) == names, (list(t.rows), names)
            checked = 0
            for g in seg["segments"]:
                row = t.rows[g["segment"]]
                want = {"customers": f_num(g["customers"]), "share": f_pct(g["share"]),
                        "monetary": f_money(g["avg_monetary_minor"]), "clv": f_money(g["avg_clv_minor"]),
                        "nps": f_nps_js(g), "responses": f_num(g["nps_responses"]),
                        "triggers": f_num(g["triggers_fired"]), "rate": f_pct(g["campaign_response_rate"])}
                for k, v in want.items():
                    assert row.get(k) == v, "segment %s, %s: page %r, /segments %r" % (g["segment"], k, row.get(k), v)
                    checked += 1
                if g["customers"] > 0:
                    th = get_json(port, "/segments/%s/themes?category=detractor&n=3"
                                  % urllib.parse.quote(g["segment"]))
                    assert row["terms"] == ", ".join(x["term"] for x in th["terms"]), (g["segment"], row["terms"], th)
                    checked += 1
            tp = parse_table(dom, "touchpoints", "data-touchpoint")
            assert seg["touchpoints"], "no touchpoint figures"
            assert list(tp.rows) == [x["touchpoint"] for x in seg["touchpoints"]]
            for x in seg["touchpoints"]:
                cells = tp.rows[x["touchpoint"]]
                assert cells["col1"] == f_nps_js(x), (x, cells)
                assert cells["col2"] == f_num(x["nps_responses"]), (x, cells)
                checked += 2
            shot = os.path.join(output_dir(), "dashboard.png")
            if os.path.exists(shot):
                os.unlink(shot)
            chromium(["--virtual-time-budget=9000", "--window-size=1650,1100", "--hide-scrollbars",
                      "--screenshot=" + shot, "http://127.0.0.1:%d/" % port], profile)
            with open(shot, "rb") as f:
                png = f.read()
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000, "screenshot missing or blank (%d bytes)" % len(png)
            print("dashboard: %d segments, %d customers, %d cells checked against /segments, events %d; screenshot %s"
                  % (len(names), seg["customers"], checked, events, shot))
            assert demo.alive(), "demo exited early:\n" + demo.log()[-2000:]
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    cxtest.main(globals())
