"""Central search over the archive's index: p95 < 200 ms over 5 M calls from 50 boxes (issue 17).

The index is written by the viewer's own code (:func:`firmware.archive.viewer.write_index`,
each row through :func:`index_row`, as ``linekeeper archive index`` does after reading the
bucket) from 5 000 000 synthetic call records of 50 boxes over a year (numbers drawn
from 400 000 callers, so a number has about a dozen calls). Reading and unsealing the
records from S3 is not in this figure (section ``archive`` measures the box's side).

Each typical search runs ``iterations`` times with random arguments, as the viewer's
calls page asks them (newest 200 first):

- ``number_suffix``  the last 6 digits of a number, every site
- ``number_whole``   a whole number, every site
- ``site_day``       one site, one day
- ``all_sites_day``  every site, one day
- ``latest``         every site, no filter (the page's first view)
- ``number_month``   last 6 digits within a month

Baseline, side by side: ``get_call`` (one call by its primary key, the call page's
lookup). Ratios are p95 / the baseline's p95.
"""

import os
import random
import tempfile
import time

from bench.web import _stats

TARGET_P95_MS = 200.0
N_BOXES = 50
T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
YEAR_US = 365 * 86_400_000_000
DAY_US = 86_400_000_000


def _number(i):
    return "01632%06d" % i


def records(n_calls, n_numbers, seed=17):
    """``(doc, key)`` pairs shaped as :func:`firmware.archive.viewer.read_record` gives them."""
    rnd = random.Random(seed)
    per_box = n_calls // N_BOXES
    step_us = YEAR_US // per_box
    for b in range(N_BOXES):
        box = "site-%02d" % b
        t = T0_US + rnd.randrange(step_us)
        for call_id in range(1, per_box + 1):
            t += rnd.randrange(1, 2 * step_us)
            answered = rnd.random() < 0.8
            talk_us = rnd.randrange(5_000_000, 600_000_000)
            number = _number(rnd.randrange(n_numbers))
            yield (
                {
                    "box": box,
                    "call_id": call_id,
                    "line": 1 + call_id % 4,
                    "direction": "in" if rnd.random() < 0.7 else "out",
                    "started_us": t,
                    "answered_us": t + 4_000_000 if answered else None,
                    "ended_us": t + 4_000_000 + (talk_us if answered else 0),
                    "answered": answered,
                    "duration_s": round(talk_us / 1e6, 3) if answered else None,
                    "number": number,
                    "name": None,
                    "recordings": [
                        {
                            "key": "%s/recordings/%064x.lkarc" % (box, t),
                            "sha256": "%064x" % t,
                            "state": "complete",
                        }
                    ]
                    if answered
                    else [],  # fmt: skip
                    "call": {"tags": [], "policy_decision": "record", "consent": None, "pause_spans": []},
                },
                "%s/calls/%010d.json" % (box, call_id),
            )


def _cases(rnd, n_numbers):
    def day():
        return T0_US + rnd.randrange(365) * DAY_US

    def suffix():
        return _number(rnd.randrange(n_numbers))[-6:]

    return {
        "number_suffix": lambda: {"number": suffix()},
        "number_whole": lambda: {"number": _number(rnd.randrange(n_numbers))},
        "site_day": lambda: (
            lambda d: {"box": "site-%02d" % rnd.randrange(N_BOXES), "since_us": d, "until_us": d + DAY_US}
        )(day()),  # fmt: skip
        "all_sites_day": lambda: (lambda d: {"since_us": d, "until_us": d + DAY_US})(day()),
        "latest": lambda: {},
        "number_month": lambda: (lambda d: {"number": suffix(), "since_us": d, "until_us": d + 30 * DAY_US})(
            day()
        ),
    }


def run(quick=False):
    from firmware.archive import viewer

    n_calls = 200_000 if quick else 5_000_000
    n_numbers = max(1000, n_calls // 12)
    iterations = 50 if quick else 200
    results = {
        "calls": n_calls,
        "boxes": N_BOXES,
        "distinct_numbers": n_numbers,
        "iterations": iterations,
        "note": "quick mode: 200 000 calls" if quick else "5 000 000 calls",
        "targets": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "index.db")
        t = time.perf_counter()
        assert viewer.write_index(path, records(n_calls, n_numbers), sealed_opened=True) == n_calls
        results["build_s"] = round(time.perf_counter() - t, 1)
        results["index_mb"] = round(os.path.getsize(path) / 1e6, 1)
        db = viewer.open_index(path)
        try:
            rnd = random.Random(1)
            samples = []
            for _ in range(iterations):
                box, call_id = "site-%02d" % rnd.randrange(N_BOXES), rnd.randrange(1, n_calls // N_BOXES)
                t = time.perf_counter()
                assert viewer.get_call(db, box, call_id) is not None
                samples.append(time.perf_counter() - t)
            base = _stats(samples)
            results["baseline_get_call"] = base
            worst = 0.0
            for name, make in _cases(rnd, n_numbers).items():
                samples, found = [], 0
                for _ in range(iterations):
                    kwargs = make()
                    t = time.perf_counter()
                    found += len(viewer.search(None, limit=200, newest_first=True, db=db, **kwargs))
                    samples.append(time.perf_counter() - t)
                stats = _stats(samples)
                stats["mean_found"] = round(found / iterations, 1)
                stats["ratio_p95_to_baseline"] = round(stats["p95_ms"] / max(base["p95_ms"], 1e-3), 1)
                results[name] = stats
                results["targets"][name] = "p95 < %d ms" % TARGET_P95_MS
                worst = max(worst, stats["p95_ms"])
            results["worst_p95_ms"] = worst
            results["targets"]["worst_p95_ms"] = "< %d ms" % TARGET_P95_MS
        finally:
            db.close()
    return results
