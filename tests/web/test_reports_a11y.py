"""The Reports page's dates refused as a screen reader meets them: the message beside the
date that is wrong, so that forms.js marks that field and takes the keyboard there. The
browser half is in test_responsive.py."""

import re


def _form(text):
    return re.search(r'<form[^>]*id="report-form".*?</form>', text, re.S).group(0)


def test_a_date_the_report_refuses_is_said_beside_that_date(box, people):
    """Every refusal of the days was one message for the whole form: no field was marked,
    the keyboard stayed at the page's top."""
    sam = people["sam"]
    cases = [
        ("from=2026-02-30&to=2026-03-01", "from", "is not a date"),
        ("from=2026-03-01&to=2026-02-30", "to", "is not a date"),
        ("from=2026-03-05&to=2026-03-01", "to", "The date range is backwards"),
        ("from=2025-01-01&to=2026-03-02", "to", "at most 366 days"),
    ]
    for query, field, said in cases:
        resp = sam.get("/reports?" + query)
        form = _form(resp.get_data(as_text=True))
        assert resp.status_code == 400, query
        message = re.search(
            r'name="%s"[^>]*></label><span class="field-error" id="error-%s" role="alert">([^<]*)<'
            % (field, field),
            form,
        )
        assert message and said in message.group(1), (query, form)
        assert 'id="error-range"' not in form, query


def test_a_figure_there_is_none_of_reads_none_not_blank(box, people):
    """With no calls, a rate or a mean has no value: its cell was empty, read as "blank" by a
    screen reader, as if it had failed to load. It shows a dash, read "none"; the CSV keeps
    the empty cell."""
    sam = people["sam"]
    text = sam.get("/reports?from=2025-01-06&to=2025-01-06").get_data(as_text=True)
    tables = re.findall(r'<table class="report".*?</table>', text, re.S)
    assert tables
    assert not any(re.search(r"<td>\s*</td>", t) for t in tables), tables
    none = '<td><span aria-hidden="true">—</span><span class="sr-only">none</span></td>'
    for figure in ("Answered rate %", "Mean talk (h:mm:ss)"):
        row = re.search(r'<th scope="row">%s</th>(.*?)</tr>' % re.escape(figure), text)
        assert row and none in row.group(1), (figure, row and row.group(1))
    csv = sam.get("/reports/download?format=csv&from=2025-01-06&to=2025-01-06").get_data(as_text=True)
    assert re.search(r"^Answered rate %,+\r?$", csv, re.M) and "—" not in csv, csv
