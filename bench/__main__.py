"""`make bench`: every measurement side by side with its baseline.

Prints a table and writes bench/results.json and the same table to
bench/results.txt. Targets come from the issues; a result is reported next to
its target, never asserted in tests. Set BENCH_QUICK=1 for a shorter (less
precise) run. ``python -m bench power_fail recording`` runs just those
sections and replaces them in results.json, keeping the others; each section
says when it ran (``when``).
"""

import importlib
import json
import os
import platform
import sys
import time

from bench import measure

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
    "card",
    "archive",
    "archive_search",
    "evidence",
    "pages",
)


def main(argv):
    quick = os.environ.get("BENCH_QUICK") == "1" or "--quick" in argv
    named = [a for a in argv if not a.startswith("-")]
    unknown = [a for a in named if a not in SECTIONS]
    if unknown:
        print("bench: no section %s (sections: %s)" % (", ".join(unknown), " ".join(SECTIONS)))
        return 2
    out = os.path.join(os.path.dirname(__file__), "results.json")
    results = _earlier(out) if named else {}
    results.update(
        {
            "machine": {
                "python": platform.python_version(),
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "openssl_ia32cap": os.environ.get("OPENSSL_ia32cap"),
                # What the device-byte figures read from write_bytes rest on (docs/bench.md).
                "write_bytes_of_a_100_byte_write": measure.small_write_counts(
                    os.environ.get("BENCH_TMP", "/var/tmp")
                ),
            },
            "quick": quick,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    for name in named or SECTIONS:
        module = importlib.import_module("bench." + name)
        t0 = time.monotonic()
        section = module.run(quick=quick)
        section["bench_seconds"] = round(time.monotonic() - t0, 1)
        section["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        results[name] = section
    rows = []
    for name in SECTIONS:
        if isinstance(results.get(name), dict):
            module = importlib.import_module("bench." + name)
            section = results[name]
            rows.extend(module.table(section) if hasattr(module, "table") else _rows(name, section))
    with open(out + ".tmp", "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(out + ".tmp", out)
    text = os.path.join(os.path.dirname(__file__), "results.txt")
    with open(text + ".tmp", "w") as f:
        f.write(_table(rows))
    os.replace(text + ".tmp", text)
    print(_table(rows), end="")
    print("\nwritten to %s and %s" % (os.path.relpath(out), os.path.relpath(text)))
    return 0


def _earlier(path):
    """The sections of an earlier results.json (empty if there is none or it is unreadable)."""
    try:
        with open(path) as f:
            earlier = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(earlier, dict):
        return {}
    for section in earlier.values():  # sections from a whole run carry that run's time
        if isinstance(section, dict) and "bench_seconds" in section:
            section.setdefault("when", earlier.get("when"))
    return earlier


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


def _table(rows):
    width = max(len(r[0]) for r in rows) if rows else 10
    lines = ["%-*s  %14s  %s" % (width, "measure", "value", "target")]
    for label, value, target in rows:
        if isinstance(value, float):
            value = "%.4g" % value
        lines.append("%-*s  %14s  %s" % (width, label, value, target))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
