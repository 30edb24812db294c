"""A report as PDF, with reportlab.

reportlab rather than weasyprint: it is a wheel with no system libraries
(weasyprint needs Pango and its fonts on the box), it builds a month's report
in well under a second on a Pi-class CPU, and it draws the charts itself
from the same figures, so nothing has to go through HTML and CSS layout
again. The tables are :func:`firmware.reports.tables.tables`, cell for cell.
"""

import io
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from ..localtime import days_words
from ..words import counted, line_said
from .tables import outages_note, running_note, tables

_CHUNK_ROWS = 30
_STYLE = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 8),
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef3")),
        ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
        ("REPEATROWS", (0, 0), (-1, 0), 1),
    ]
)


def _hours_drawing(report):
    d = Drawing(170 * mm, 55 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 10 * mm, 8 * mm, 155 * mm, 42 * mm
    chart.data = [list(report["box"]["hours"])]
    chart.categoryAxis.categoryNames = ["%02d" % h for h in range(24)]
    chart.categoryAxis.labels.fontSize = 6
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontSize = 6
    chart.bars[0].fillColor = colors.HexColor("#2a6f97")
    chart.barLabelFormat = lambda v: "%d" % v if v else ""
    chart.barLabels.fontSize = 5
    chart.barLabels.nudge = 5
    d.add(chart)
    return d


def to_pdf(report, title="Linekeeper report", not_over=None, line_names=None):
    """The report as PDF bytes: a title, the hours chart and every table; ``not_over``,
    what is said of a period not over yet (its figures are those so far), above them;
    ``line_names``: ``{line: name}`` of the site settings, each line named as the pages and
    the mail name it, "line 2 (Office)" (:func:`~.tables.tables`)."""
    buf = io.BytesIO()
    page = landscape(A4)
    doc = SimpleDocTemplate(
        buf,
        pagesize=page,
        title=title,
        author="Linekeeper",
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        invariant=1,
    )  # the same report gives the same bytes
    styles = getSampleStyleSheet()
    p = report["period"]
    story = [
        Paragraph(escape(title), styles["Title"]),
        Paragraph(
            # Its days as the pages and the mail's subject write them: a person reads it.
            "Period %s (%s), %s; %s"
            % (
                days_words(p["from"], p["to"]),
                escape(p["tz"]),
                counted(p["days"], "day"),
                escape(", ".join(line_said(int(n), (line_names or {}).get(int(n))) for n in report["lines"])),
            ),
            styles["Normal"],
        ),
    ]
    for note in (not_over, running_note(report), outages_note(report, line_names)):
        if note:
            story.append(Paragraph("<b>%s</b>" % escape(note), styles["Normal"]))
    story += [Spacer(1, 4 * mm), _hours_drawing(report)]
    for name, header, rows in tables(report, human=True, line_names=line_names):
        story += [Spacer(1, 3 * mm), Paragraph(escape(name), styles["Heading3"])]
        if not rows:
            story.append(Paragraph("None.", styles["Normal"]))
            continue
        # Tables of a page's rows or less: reportlab's splitting of one long
        # table grows with the square of its rows (a month's callback list can
        # hold thousands).
        for i in range(0, len(rows), _CHUNK_ROWS):
            table = LongTable([header] + rows[i : i + _CHUNK_ROWS], repeatRows=1, hAlign="LEFT")
            table.setStyle(_STYLE)
            story.append(table)
    doc.build(story)
    return buf.getvalue()
