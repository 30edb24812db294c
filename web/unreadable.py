"""A page whose data cannot be read while the web UI runs.

The web UI reads six databases (:data:`STORES`). One damaged, replaced, made
unreadable (a permission gone wrong, an I/O error) or locked past SQLite's busy
timeout while the web UI runs made every page that reads it raise, and answer a
bare 500 ("something went wrong"); ``alarms.db`` or ``web.db`` took every page
with it, since each page reads the alarm banner and the session. Now such an
error, from any view, answers a page of its own (503, the JSON ``{"ok": false,
"data_unreadable": ...}`` under ``/api/``): which store could not be read, why, and
what to do, and never part of the page as if it were all of it.

Which store it was is found by opening each (:func:`web.refused.refusing`):
a damaged or unreadable file shows there, as when the web UI starts, and one another
process still holds locked is named as locked (waited for a moment only, not SQLite's
busy timeout on each). A store that opens but failed part way (a damaged page deep in
it, a lock a writer held only for a moment) is not named: the page gives SQLite's or
the system's reason as the error said it.

The page reads nothing but the error and the files' first pages: not the session
(in ``web.db``), the site settings nor the alarm banner (``alarms.db``), any of which
may be the store that failed. It says no more than the refusal page at the start
(:mod:`web.refused`): the file and the error, no number, name or recording.

Where the box has an alarm for the store it is raised: the audit trail's
(``audit_unverified``, through :meth:`web.Web.chain_unreadable`, cleared as a check
of the trail next runs) and the register of requests' (``request_check_failed``,
which the recorder's round clears once the register reads again).
"""

import html
import logging
import sqlite3

from flask import current_app, jsonify, request

from firmware.datadir import storage_error
from firmware.errors import LinekeeperError, StorageError
from firmware.rights import FILE as RIGHTS_FILE

from .refused import PAGE, refusing
from .security import lk

log = logging.getLogger(__name__)

TITLE = "The box's data could not be read or written"
# Each database the web UI reads: what it holds, in the page's words.
STORES = {
    "web.db": "the web UI's accounts, sessions, phonebook and notes",
    "alarms.db": "the alarm history",
    "calls.db": "the call log",
    "audit.db": "the audit trail",
    "disclosures.db": "the disclosure log",
    RIGHTS_FILE: "the register of data subjects' requests",
}
# What else to do for a store, where there is more than checking the card.
ADVICE = {
    "calls.db": " A damaged call log is rebuilt from the recordings with 'linekeeper repair'.",
}
# SQLite errors that are the program's mistake, not the card's: the ordinary 500.
NOT_STORAGE = (sqlite3.ProgrammingError, sqlite3.IntegrityError, sqlite3.InterfaceError)


def is_unreadable(exc):
    """Whether ``exc`` is the card's refusal (a storage error), not a mistake in the code."""
    if isinstance(exc, StorageError):
        return True
    if isinstance(exc, NOT_STORAGE) or isinstance(exc, (LinekeeperError, ConnectionError)):
        return False
    return isinstance(exc, (sqlite3.Error, OSError))


def handler(exc):
    """The error handler of :func:`web.create_app` for a storage error (module doc);
    any other error goes on to the ordinary 500."""
    if not is_unreadable(exc):
        raise exc
    web = lk()
    log.error(
        "%s %s: the box's data could not be read or written: %s",
        request.method,
        request.path,
        exc,
        exc_info=exc,
    )
    found = refusing(web.config.data_dir, tuple(STORES))
    if found is not None:
        name, reason = found[0], found[1].split(": ", 1)[-1]
        said = "%s (%s) could not be read: %s" % (STORES[name], name, reason)
    else:  # it opens: the error's own words, without a file named
        name, reason = None, None
        refused = exc if isinstance(exc, StorageError) else None
        said = str(refused or storage_error(exc, "the box's data could not be read or written"))
    alarm = _raise_alarm(web, name, reason, exc)
    texts = ["This page could not be shown: %s." % said.rstrip(".")]
    if alarm:
        texts.append("An alarm was raised.")
    advice = (
        "Nothing of the page is shown rather than part of it. If you were saving something, "
        "look whether it was saved before you try again. A database the recorder holds for "
        "a moment answers again: this page reloads itself, and the page you asked for comes "
        "back as soon as the data can be read. If it does not, the card or that file is "
        "failing: a technician checks it with 'linekeeper verify' on the box "
        "(docs/recovery.md)." + ADVICE.get(name, "")
    )
    if request.path.startswith("/api/"):
        return jsonify({"ok": False, "data_unreadable": said, "alarm": alarm}), 503
    paragraphs = "\n".join('<p class="error" id="data-unreadable">%s</p>' % html.escape(t) for t in texts[:1])
    paragraphs += "".join("\n<p>%s</p>" % html.escape(t) for t in texts[1:])
    paragraphs += "\n<p>%s</p>" % html.escape(advice)
    body = PAGE % {
        "title": html.escape(TITLE),
        "paragraphs": paragraphs,
        "style": html.escape(current_app.static_url_path + "/style.css"),
    }
    return body, 503, {"Content-Type": "text/html; charset=utf-8", "Retry-After": "10"}


def _raise_alarm(web, name, reason, exc):
    """Raise the box's alarm for the store ``name`` (which refused for ``reason``; the page
    raised ``exc``), if it has one; whether one was raised."""
    if name == "audit.db":
        # In the words of the chain's own check, which meets the same error: one occurrence.
        return web.chain_unreadable("audit", "%s: %s" % (type(exc).__name__, exc))
    alarms = web.services.alarms
    if name != RIGHTS_FILE or alarms is None:
        return False
    try:
        # As the recorder's round words it (firmware.rights.OverdueCheck), which clears it.
        alarms.set(
            "request_check_failed",
            True,
            message="%s cannot be read (%s): the requests' deadlines are not being watched"
            % (RIGHTS_FILE, reason),
            wall_us=int(web.services.wall_us()),
        )
    except Exception as alarm_exc:  # the page still says it, and the log
        log.error("the request_check_failed alarm could not be set: %s", alarm_exc)
        return False
    return True
