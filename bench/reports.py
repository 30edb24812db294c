"""A month's report at a million calls (issue 13: renders in under 2 s).

The call log of bench/web.py (1 000 000 calls over 4 lines, about 2.5
years) is built once; then the report of one month (December 2023, about 35 000
calls) is made ``iterations`` times each way:

- ``query_only_ms``  the baseline: the month's rows read from SQLite, nothing else
- ``compute_ms``     the report's figures (build_report)
- ``json_ms`` / ``csv_ms`` / ``pdf_ms``  figures and the file
- ``page_ms``        the whole web page (figures, tables, SVG charts, template)
                     through the app as bench.web's admin (a
                     supervisor of every line)

``year`` is the answer to a report of the whole of 2024 (about 400 000 calls):
refused with a message, and how long saying so took.
"""

import os
import sqlite3
import tempfile
import time

from bench.web import _stats, make_log

TARGET_MS = 2000.0
MONTH = ("2023-12-01", "2023-12-31")


def _time(fn, iterations):
    samples = []
    for _ in range(iterations):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return _stats(samples)


def run(quick=False):
    from bench.web import _app
    from firmware.errors import ReportError
    from firmware.reports.formats import render
    from firmware.reports.source import ReportSource

    n_calls = 100_000 if quick else 1_000_000
    iterations = 3 if quick else 10
    results = {
        "calls": n_calls,
        "iterations": iterations,
        "month": "%s to %s" % MONTH,
        "note": "quick mode: 100 000 calls" if quick else "1 000 000 calls",
        "targets": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        calls_db = os.path.join(tmp, "calls.db")
        make_log(calls_db, n_calls)
        app, client = _app(tmp, calls_db)
        source = ReportSource(os.path.join(tmp, "data"), n_lines=4, calls_db=calls_db)
        app.extensions["linekeeper"].services.reports = source
        period = source.period(*MONTH)
        results["month_calls"] = source.report(period)["box"]["calls"]

        def query_only():
            db = sqlite3.connect(calls_db)
            db.execute(
                "SELECT * FROM calls WHERE started_at >= ? AND started_at < ?",
                (period.start_us, period.end_us),
            ).fetchall()
            db.close()

        results["query_only_ms"] = _time(query_only, iterations)
        results["compute_ms"] = _time(lambda: source.report(period), iterations)
        for fmt in ("json", "csv", "pdf"):
            results[fmt + "_ms"] = _time(lambda fmt=fmt: render(source.report(period), fmt), iterations)

        def page():
            resp = client.get("/reports?from=%s&to=%s" % MONTH)
            assert resp.status_code == 200, resp.status_code

        results["page_ms"] = _time(page, iterations)
        t = time.perf_counter()
        try:
            source.report(source.period("2024-01-01", "2024-12-31"))
            results["year"] = "made (not refused)"
        except ReportError as exc:
            results["year"] = str(exc)
        results["year_refusal_ms"] = round((time.perf_counter() - t) * 1000, 1)
        app.extensions["linekeeper"].close()
    for key in ("compute_ms", "json_ms", "csv_ms", "pdf_ms", "page_ms"):
        results["targets"][key] = "p95 < %d ms" % TARGET_MS
        results[key]["meets_target"] = results[key]["p95_ms"] < TARGET_MS
        results[key]["ratio_to_query"] = round(results[key]["p50_ms"] / results["query_only_ms"]["p50_ms"], 1)
    return results


def table(section):
    rows = [
        ("reports." + k, section[k], "")
        for k in ("calls", "month", "month_calls", "note", "year", "year_refusal_ms")
    ]
    for key, value in section.items():
        if key.endswith("_ms") and isinstance(value, dict):
            rows.append(("reports.%s p50" % key, value["p50_ms"], ""))
            rows.append(("reports.%s p95" % key, value["p95_ms"], section["targets"].get(key, "baseline")))
    return rows
