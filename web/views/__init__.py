"""One blueprint per resource; each view declares its access (web.security)."""

import datetime as dt
import hashlib
import io
import logging
import zipfile

from flask import Response, abort, g, request

from firmware import csvsafe
from firmware import rights as register_rules  # not .rights: the requests page's module
from firmware.sar import DisclosureLog

from .. import security
from ..refused import PROBE_TIMEOUT_S

MAX_PAGE = 1_000_000
# How long a whole check of the deletion log or the audit trail stands (re-checked whole
# after; in between, each visit checks the entries added since: Web.audit_checked): hashing
# 600 000 deletions takes seconds (9 s on a Pi-class board), 1.5 million audit entries 12 s
# on the development host. A whole check that is due runs in the background (Web._check_whole).
CHECK_STANDS_S = 600
CSV_CHUNK_ROWS = 500
# The last row of a CSV whose reading failed part way (web.views.csv_download).
CSV_CUT_ROW = (
    "EXPORT STOPPED EARLY: this copy is NOT complete. Only the {written} rows above were "
    "written, of the {planned} it should hold ({reason}). Download it again."
)

log = logging.getLogger("linekeeper.web")


def row_id(number):
    """Whether ``number`` (a URL's ``<int:...>``, any number of digits 0-9) can be the id of a
    row in the box's SQLite stores: one past SQLite's integers is no row's, and looking it
    up raises an OverflowError (a server error). A view answers it as it answers an id no
    row has."""
    return 0 <= number < 1 << 63


def site_region():
    """Where the business is (the site settings'): whose bank holidays the requests'
    deadlines count."""
    site = security.lk().site.settings()
    return site.region if site is not None else register_rules.DEFAULT_REGION


def outside_lines():
    """``{line: outside-line digit}`` of the box's configuration (``policy.rules.lines``):
    a search by number looks past the digit before a number dialled on such a line, as it
    looks past 141. {} where there is no configuration to read."""
    store = security.lk().services.box_config
    return store.outside_lines() if store is not None else {}


def read_wait_s():
    """How long a store a view opens (the register of requests, the disclosure log) waits
    for another process's lock as it reads: a page view (GET, HEAD), which only reads, a
    moment (:data:`web.refused.PROBE_TIMEOUT_S`), then the page says which store is locked
    (web/unreadable.py), where it waited SQLite's 5 s first; any other request waits as a
    writer does (None: the store's own busy timeout), and each store's changes always do."""
    return PROBE_TIMEOUT_S if request.method in ("GET", "HEAD") else None


def supervised_lines():
    """The lines some enabled supervisor account holds
    (:func:`firmware.rights.supervised_lines`): a request about none of them is shown to
    every supervisor (:func:`firmware.rights.concerns_lines`), so someone can answer it."""
    return register_rules.supervised_lines(security.lk().accounts.lines())


def rights_register():
    """The register of data subjects' requests (:class:`firmware.rights.RightsRegister`),
    its deadlines counted in :func:`site_region`, its reads waiting :func:`read_wait_s`;
    the caller closes it."""
    web = security.lk()
    return register_rules.RightsRegister(
        web.config.data_dir, web.services.cipher, site_region(), busy_s=read_wait_s()
    )


def disclosure_log(cipher=None):
    """The disclosure log (:class:`firmware.sar.DisclosureLog`, opened with ``cipher``), its
    reads waiting :func:`read_wait_s`; the caller closes it."""
    return DisclosureLog(security.lk().config.data_dir, cipher, busy_s=read_wait_s())


def page_number(errors):
    """The ``page`` query argument (1 when absent); a bad one is reported in ``errors``."""
    page = security.whole_number(request.args.get("page", "1"))
    if page is None or not 1 <= page <= MAX_PAGE:
        errors["page"] = "The page must be a whole number from 1."
        page = 1
    return page


def csv_within(what, matched, exact, cap, narrow, whole=""):
    """Refuse (400) a CSV of ``what`` whose filter selects ``matched`` rows (``exact``, or
    at least that many), more than the ``cap`` one download holds, saying how to
    ``narrow`` it (a sentence) and, given ``whole`` (a sentence), how to copy them all
    elsewhere; else nothing. Cut to the first ``cap``, the copy looked whole to whoever was
    handed it, with nothing in the file to say the rest was left out."""
    if matched <= cap:
        return
    many = f"{matched:,} {what}, more than the {cap:,}" if exact else f"more than the {cap:,} {what}"
    abort(
        400,
        description="This selects %s one download holds, and a copy that leaves some out must not "
        "look whole. %s, and download each part.%s" % (many, narrow, " " + whole if whole else ""),
    )


def csv_download(filename, columns, rows, what, count=None, **details):
    """``rows`` (lists of cells under ``columns``) as the attachment ``filename``, each
    cell through :mod:`firmware.csvsafe` (text someone typed is never a formula), the
    download audited first as ``export_list`` of ``what`` with ``details`` and
    ``rows``: ``count``, or ``len(rows)``.

    The file is sent as it is written, a few hundred rows at a time: a log of 600 000
    entries (a year or two of deletions) held whole would not fit the web UI's memory.
    ``rows`` must not need the request (it is read after the view returns).

    By then the answer is 200 and some rows have left, so a read that fails part way
    (a card error, a database the recorder has locked too long) cannot be a page of its
    own: the file ends with one row, :data:`CSV_CUT_ROW`, saying it stopped early, how
    many rows it holds and why; the error is logged, and audited as ``export_list_cut``
    of ``what`` (``rows`` written, ``of`` promised, ``reason``), since the entry
    written first says the whole count left. Without that row a cut-short copy looked
    complete to whoever holds it.
    """
    planned = len(rows) if count is None else count
    security.audit("export_list", what, rows=planned, **details)
    return Response(
        csv_chunks(columns, rows, csv_stopped(what, planned)),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=" + filename},
    )


def csv_stopped(what, planned):
    """What :func:`csv_chunks` calls when reading the rows of the ``what`` list's copy (of
    ``planned`` rows) fails part way: the error logged and audited as ``export_list_cut``,
    and the last row the copy ends with, :data:`CSV_CUT_ROW`. Made in the request: it
    runs after the view has returned."""
    web = security.lk()
    actor, address = g.user.name, request.remote_addr or ""

    def stopped(written, exc):
        reason = "%s: %s" % (type(exc).__name__, exc)
        log.error("the %s CSV stopped after %d of %d rows: %s", what, written, planned, reason, exc_info=exc)
        try:
            web.services.audit.append(
                actor,
                "export_list_cut",
                what,
                {"rows": written, "of": planned, "reason": reason, "address": address},
                int(web.services.wall_us()),
            )
        except Exception as audit_exc:  # the row below still says it; the log has both
            log.error("the %s CSV's early stop could not be audited: %s", what, audit_exc)
        return CSV_CUT_ROW.format(written=written, planned=planned, reason=reason)

    return stopped


def csv_chunks(columns, rows, stopped):
    """The CSV text of ``rows`` under ``columns``, each cell through :mod:`firmware.csvsafe`,
    in chunks of :data:`CSV_CHUNK_ROWS` rows; a read that fails part way ends it with the
    row ``stopped(written, exc)`` returns (:func:`csv_stopped`)."""
    out = io.StringIO()
    writer = csvsafe.Writer(out)
    writer.writerow(columns)
    written = 0
    try:
        for row in rows:
            writer.writerow(row)
            written += 1
            if written % CSV_CHUNK_ROWS == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
    except Exception as exc:  # whatever failed, the file must not look whole
        writer.writerow([stopped(written, exc)])
    yield out.getvalue()


class _Pipe:
    """Where :func:`signed_csv_zip`'s zip is written, taken a chunk at a time as it grows."""

    def __init__(self):
        self._parts = []

    def write(self, data):
        self._parts.append(bytes(data))
        return len(data)

    def flush(self):
        pass

    def take(self):
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def signed_csv_zip(name, columns, rows, stopped, statement, wall_us):
    """A zip, in chunks as it is written, of the CSV ``name`` (:func:`csv_chunks` of
    ``rows`` under ``columns``; ``stopped`` as there) and, once it is whole, beside it
    ``name`` + ``.statement.json``: ``statement(the CSV's SHA-256 in hex)``, the box's
    signed statement of it (bytes). A CSV cut short ends with the row ``stopped`` gives and
    has no statement: the box vouches only for a whole copy. Files dated ``wall_us`` (UTC).
    ``rows`` must not need the request (they are read after the view returns)."""
    cut = []

    def noted(written, exc):
        cut.append(written)
        return stopped(written, exc)

    when = dt.datetime.fromtimestamp(wall_us / 1e6, dt.UTC).timetuple()[:6]
    pipe, digest = _Pipe(), hashlib.sha256()
    with zipfile.ZipFile(pipe, "w") as zf:
        member = zipfile.ZipInfo(name, when)
        member.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(member, "w", force_zip64=True) as out:
            for text in csv_chunks(columns, rows, noted):
                data = text.encode("utf-8")
                digest.update(data)
                out.write(data)
                yield pipe.take()
        if not cut:
            signed = zipfile.ZipInfo(name + ".statement.json", when)
            signed.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(signed, statement(digest.hexdigest()))
    yield pipe.take()
