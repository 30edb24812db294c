"""A report as tables of text, and as JSON or CSV.

:func:`tables` is the one place figures become text: the web page, the CSV
and the PDF all print its cells, so the screen, the CSV and the PDF hold the
same figures character for character.
"""

import csv
import datetime as dt
import io
import json

from ..errors import ReportError

FORMATS = ("json", "csv", "pdf")

# (label, path into a totals dict)
SUMMARY = (
    ("Calls", ("calls",)),
    ("Inbound", ("in",)),
    ("Outbound", ("out",)),
    ("Missed", ("missed",)),
    ("Answered inbound", ("answered_in",)),
    ("Answered rate %", ("answered_rate_pct",)),
    ("Outbound connected", ("connected_out",)),
    ("Talk time s", ("talk_s",)),
    ("Mean talk s", ("mean_talk_s",)),
    ("Longest talk s", ("longest_talk_s",)),
    ("Connected calls", ("coverage", "connected")),
    ("Recorded", ("coverage", "recorded")),
    ("Recorded, partial", ("coverage", "partial")),
    ("Private line", ("coverage", "private")),
    ("Excluded by rule", ("coverage", "excluded")),
    ("On demand, not asked", ("coverage", "not_asked")),
    ("Recording failed", ("coverage", "failed")),
    ("Calls with a PCI pause", ("coverage", "paused_calls")),
    ("Paused s", ("coverage", "paused_s")),
    ("Consent notice given", ("consent", "given")),
    ("Consent notice failed", ("consent", "failed")),
    ("Consent notice off", ("consent", "off")),
    ("Retention deletions", ("deletions",)),
)


def cell(value):
    """A figure as text: integers as such, decimals without trailing zeros, None empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = "%.3f" % value
        return text.rstrip("0").rstrip(".")
    return str(value)


def when(wall_us, tz):
    """``wall_us`` as local ``YYYY-MM-DD HH:MM:SS`` in ``tz`` (a ZoneInfo)."""
    return dt.datetime.fromtimestamp(wall_us / 1e6, tz).strftime("%Y-%m-%d %H:%M:%S")


def _get(totals, path):
    for key in path:
        totals = totals[key]
    return totals


def tables(report):
    """The report as ``[(title, header, rows)]``, every cell text."""
    import zoneinfo
    tz = zoneinfo.ZoneInfo(report["period"]["tz"])
    lines = [str(n) for n in report["lines"]]
    cols = [report["box"]] + [report["per_line"][n] for n in lines]
    header = ["Figure", "Box"] + ["Line %s" % n for n in lines]
    out = [("Summary", header,
            [[label] + [cell(_get(t, path)) for t in cols] for label, path in SUMMARY])]
    reasons = sorted(report["box"]["coverage"]["excluded_by_reason"])
    out.append(("Excluded by rule", ["Reason", "Box"] + header[2:],
                [[r] + [cell(t["coverage"]["excluded_by_reason"].get(r, 0)) for t in cols]
                 for r in reasons]))
    out.append(("Calls by hour of day (%s)" % report["period"]["tz"], ["Hour", "Box"] + header[2:],
                [["%02d:00" % h] + [cell(t["hours"][h]) for t in cols] for h in range(24)]))
    out.append(("Callback list: missed, not called back",
                ["Number", "Lines", "Missed", "First missed", "Last missed"],
                [[c["number"], " ".join(map(str, c["lines"])), cell(c["missed"]),
                  when(c["first_missed_us"], tz), when(c["last_missed_us"], tz)]
                 for c in report["callbacks"]]))
    out.append(("Retention deletions by rule", ["Rule", "Deleted"],
                [[rule, cell(n)] for rule, n in report["deletions_by_rule"].items()]))
    access = report["access"]
    users = sorted(set().union(*(access[k] for k in access)))
    out.append(("Playbacks and exports by user",
                ["User", "Playbacks", "Exports", "Refused exports"],
                [[u, cell(access["playback"].get(u, 0)), cell(access["export"].get(u, 0)),
                  cell(access["export_refused"].get(u, 0))] for u in users]))
    out.append(("Alarms", ["Raised", "Alarm", "Line", "Cleared", "Acknowledged by"],
                [[when(a["raised_us"], tz), a["kind"], cell(a["line"] or None) or "box",
                  when(a["cleared_us"], tz) if a.get("cleared_us") else "",
                  a.get("acknowledged_by") or ""] for a in report["alarms"]]))
    return out


def to_json(report):
    """The report as JSON text (callback times also as ISO 8601 UTC)."""
    from ..calllog import iso_ms
    doc = json.loads(json.dumps(report))
    for c in doc["callbacks"]:
        c["first_missed_at"] = iso_ms(c["first_missed_us"])
        c["last_missed_at"] = iso_ms(c["last_missed_us"])
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def to_csv(report):
    """The report's tables as CSV: each table a title row, a header row, its rows, a blank row."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["Linekeeper report", report["period"]["from"], report["period"]["to"],
                report["period"]["tz"]])
    w.writerow([])
    for title, header, rows in tables(report):
        w.writerow([title])
        w.writerow(header)
        w.writerows(rows)
        w.writerow([])
    return buf.getvalue()


def render(report, fmt, title="Linekeeper report"):
    """The report as bytes in ``fmt`` ("json", "csv" or "pdf").

    :raises ReportError: an unknown format
    """
    if fmt == "json":
        return to_json(report).encode("utf-8")
    if fmt == "csv":
        return to_csv(report).encode("utf-8")
    if fmt == "pdf":
        from .pdf import to_pdf
        return to_pdf(report, title)
    raise ReportError("the report format is json, csv or pdf, not %r" % (fmt,))
