"""One blueprint per resource; each view declares its access (web.security)."""

import io

from flask import Response, request

from firmware import csvsafe
from firmware import rights as register_rules  # not .rights: the requests page's module

from .. import security

MAX_PAGE = 1_000_000
CSV_CHUNK_ROWS = 500


def site_region():
    """Where the business is (the site settings'): whose bank holidays the requests'
    deadlines count."""
    site = security.lk().site.settings()
    return site.region if site is not None else register_rules.DEFAULT_REGION


def rights_register():
    """The register of data subjects' requests (:class:`firmware.rights.RightsRegister`),
    its deadlines counted in :func:`site_region`; the caller closes it."""
    web = security.lk()
    return register_rules.RightsRegister(web.config.data_dir, web.services.cipher, site_region())


def page_number(errors):
    """The ``page`` query argument (1 when absent); a bad one is reported in ``errors``."""
    try:
        page = int(request.args.get("page", "1"))
        if not 1 <= page <= MAX_PAGE:
            raise ValueError
    except ValueError:
        errors["page"] = "The page must be a whole number from 1."
        page = 1
    return page


def csv_download(filename, columns, rows, what, count=None, **details):
    """``rows`` (lists of cells under ``columns``) as the attachment ``filename``, each
    cell through :mod:`firmware.csvsafe` (text someone typed is never a formula), the
    download audited first as ``export_list`` of ``what`` with ``details`` and
    ``rows``: ``count``, or ``len(rows)``.

    The file is sent as it is written, a few hundred rows at a time: a log of 600 000
    entries (a year or two of deletions) held whole would not fit the web UI's memory.
    ``rows`` must not need the request (it is read after the view returns).
    """
    security.audit("export_list", what, rows=len(rows) if count is None else count, **details)

    def chunks():
        out = io.StringIO()
        writer = csvsafe.Writer(out)
        writer.writerow(columns)
        for n, row in enumerate(rows, 1):
            writer.writerow(row)
            if n % CSV_CHUNK_ROWS == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    return Response(
        chunks(), mimetype="text/csv", headers={"Content-Disposition": "attachment; filename=" + filename}
    )
