"""Reports from the call log and the audit trail: what happened on the lines, as evidence.

:func:`~firmware.reports.period.parse_period` turns two dates into a
:class:`~firmware.reports.period.Period` (whole days in a time zone);
:func:`~firmware.reports.compute.build_report` reads ``calls.db`` and
``audit.db`` read-only and returns a plain dict of exact figures per line and
for the box; :mod:`~firmware.reports.formats` writes it as JSON or CSV,
:mod:`~firmware.reports.svg` draws its charts and :mod:`~firmware.reports.pdf`
prints it. The web page, the CLI and scheduled e-mail all use the same dict,
so the figures agree wherever they are read. See docs/reports.md.
"""
