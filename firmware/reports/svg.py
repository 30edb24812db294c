"""Charts of a report as small, self-contained SVG, drawn here rather than with a library.

Two bar charts are all the report needs; a hundred lines of our own SVG
are exact (every bar is a figure of the report, labelled with it), render
the same in every browser, need no JavaScript or CDN, and add no dependency
to the box. Every label is escaped.
"""

from xml.sax.saxutils import escape

_W, _H = 640, 220
_PAD_L, _PAD_B, _PAD_T = 40, 30, 16


def _axis_top(peak):
    """The smallest of 1, 2, 5, 10, 20, 50 ... at or above ``peak``: the top of the scale."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= peak:
                return step * scale
        scale *= 10


def bar_chart(title, labels, values, *, colour="#2a6f97", label_every=1):
    """An SVG bar chart: one bar per (label, value), its value written above it."""
    peak = _axis_top(max(values) if values else 1)
    plot_w = _W - _PAD_L - 10
    plot_h = _H - _PAD_B - _PAD_T
    n = max(1, len(values))
    slot = plot_w / n
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" '
        'role="img" aria-label="%s" font-family="sans-serif" font-size="10">'
        % (_W, _H, _W, _H, escape(title, {'"': "&quot;"})),
        "<title>%s</title>" % escape(title),
        '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#444"/>'
        % (_PAD_L, _PAD_T + plot_h, _W - 10, _PAD_T + plot_h),
        '<text x="%d" y="%d" text-anchor="end">%d</text>' % (_PAD_L - 4, _PAD_T + 4, peak),
        '<text x="%d" y="%d" text-anchor="end">0</text>' % (_PAD_L - 4, _PAD_T + plot_h),
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=False)):
        h = plot_h * value / peak
        x = _PAD_L + i * slot + slot * 0.15
        y = _PAD_T + plot_h - h
        parts.append(
            '<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
            "<title>%s: %d</title></rect>" % (x, y, slot * 0.7, h, colour, escape(str(label)), value)
        )
        if value:
            parts.append(
                '<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>' % (x + slot * 0.35, y - 2, value)
            )
        if i % label_every == 0:
            parts.append(
                '<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                % (x + slot * 0.35, _H - _PAD_B + 14, escape(str(label)))
            )
    parts.append("</svg>")
    return "".join(parts)


def hours_chart(report):
    """Calls started in each hour of the day, for the lines reported on."""
    return bar_chart(
        "Calls by hour of day", ["%02d" % h for h in range(24)], report["box"]["hours"], label_every=2
    )


def lines_chart(report):
    """Inbound answered, missed and outbound calls per line, side by side."""
    labels, values = [], []
    for line in report["lines"]:
        t = report["per_line"][str(line)]
        for name, value in (("in", t["answered_in"]), ("missed", t["missed"]), ("out", t["out"])):
            labels.append("L%d %s" % (line, name))
            values.append(value)
    return bar_chart("Calls per line: answered in, missed, out", labels, values, colour="#7a4f9a")
