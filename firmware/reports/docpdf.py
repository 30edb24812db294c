"""Short documents (the checklist, the staff notice) as PDF: headings, paragraphs and tables."""

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

_STYLE = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 8),
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef3")),
    ]
)
COLOURS = {"green": "#2e7d32", "amber": "#b26a00", "red": "#c62828"}


def document_pdf(title, blocks):
    """PDF bytes of ``blocks``: ``("h", text)``, ``("p", text)``, ``("table", header, rows)``.

    A cell that is ``("status", "green"|"amber"|"red")`` is printed in its colour.
    """
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        title=title,
        author="Linekeeper",
        invariant=1,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
    )
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8, leading=10)
    story = [Paragraph(escape(title), styles["Title"])]
    for block in blocks:
        if block[0] == "h":
            story.append(Paragraph(escape(block[1]), styles["Heading3"]))
        elif block[0] == "p":
            story.append(Paragraph(escape(block[1]), styles["BodyText"]))
        else:
            rows = [[_cell(c, small) for c in row] for row in [block[1]] + list(block[2])]
            table = Table(rows, repeatRows=1, hAlign="LEFT", colWidths=block[3] if len(block) > 3 else None)
            table.setStyle(_STYLE)
            story.append(table)
        story.append(Spacer(1, 2 * mm))
    doc.build(story)
    return buf.getvalue()


def _cell(value, style):
    if isinstance(value, tuple) and value[0] == "status":
        return Paragraph('<font color="%s"><b>%s</b></font>' % (COLOURS[value[1]], value[1].upper()), style)
    return Paragraph(escape(str(value)), style)
