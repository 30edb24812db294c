"""`make bench`: every measurement side by side with its baseline.

Prints a table and writes bench/results.json. Targets come from the issues;
a result is reported next to its target, never asserted in tests.
Set BENCH_QUICK=1 for a shorter (less precise) run.
"""

import importlib
import json
import os
import platform
import sys
import time

SECTIONS = (
    "ring",
    "box",
    "dsp",
    "codec",
    "web",
    "recording",
    "edge",
    "memory",
    "reports",
    "startup",
    "power_fail",
    "archive",
    "archive_search",
    "evidence",
)


def main(argv):
    quick = os.environ.get("BENCH_QUICK") == "1" or "--quick" in argv
    only = [a for a in argv if not a.startswith("-")] or list(SECTIONS)
    results = {
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
        "quick": quick,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    rows = []
    for name in only:
        module = importlib.import_module("bench." + name)
        t0 = time.monotonic()
        section = module.run(quick=quick)
        section["bench_seconds"] = round(time.monotonic() - t0, 1)
        results[name] = section
        rows.extend(module.table(section) if hasattr(module, "table") else _rows(name, section))
    out = os.path.join(os.path.dirname(__file__), "results.json")
    with open(out + ".tmp", "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(out + ".tmp", out)
    _print_table(rows)
    print("\nwritten to %s" % os.path.relpath(out))
    return 0


def _rows(name, section, prefix=""):
    """Flatten a section into (measure, value, target) rows."""
    rows = []
    targets = section.get("targets", {})
    for key, value in section.items():
        if key in ("targets", "bench_seconds"):
            continue
        label = "%s.%s%s" % (name, prefix, key)
        if isinstance(value, dict):
            rows.extend(_rows(name, value, prefix + key + "."))
        else:
            rows.append((label, value, targets.get(key, "")))
    return rows


def _print_table(rows):
    width = max(len(r[0]) for r in rows) if rows else 10
    print("%-*s  %14s  %s" % (width, "measure", "value", "target"))
    for label, value, target in rows:
        if isinstance(value, float):
            value = "%.4g" % value
        print("%-*s  %14s  %s" % (width, label, value, target))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
