"""The web UI when the box's data will not open.

A card that refuses the call log itself (``calls.db`` damaged or replaced, an
I/O error, a permission gone wrong) stops the recorder, which notes why in the
run directory (:mod:`firmware.startfail`), and it stopped the web UI too, which
opens the same files: the installer's browser found nothing at all, and only
the journal said why. Now ``linekeeper web`` serves one page in its place, on
every path: what will not open and why, the recorder's own reason when it has
one, and what to do. ``/api/health`` answers the same in JSON (503), for a
monitoring system.

The page is served before anyone logs in (the accounts are in the same data),
so it says no more than the file and the error: no number, name, recording or
setting. It reads nothing but the run directory's note and the files' first
page.

The process looks again every :data:`RETRY_S`: once the file it named opens,
it exits (status 75) and systemd starts the full web UI. When no file was named
(the failure was elsewhere), it exits after :data:`RETRY_LONG_S`, to try the
full start again without a busy loop of restarts.
"""

import html
import logging
import os
import sqlite3
import time

from flask import Flask, jsonify, request

from firmware import startfail
from firmware.datadir import storage_error
from firmware.localtime import DEFAULT_ZONE, LocalTime

from .remote import recorder_cannot_start
from .security import BOX_CSP, security_headers

log = logging.getLogger(__name__)

# The databases the web UI opens as it starts, in the order it opens them.
DATABASES = ("calls.db", "audit.db", "alarms.db", "web.db")
RETRY_S = 5.0
RETRY_LONG_S = 60.0
# How long the check of a file waits for another process's lock on it (SQLite's busy
# timeout, 5 s unless told): a page that met an error checks every store, and waited that
# long on each one locked before it answered. A lock held longer is said as one.
PROBE_TIMEOUT_S = 0.1


def refusing(data_dir, names=DATABASES):
    """``(file, reason)`` of the first of ``names`` (:data:`DATABASES`) that will not open,
    or None.

    Opened read-only and only its first page read: a damaged or replaced file, an I/O
    error or a permission refused shows there (a directory in the file's place, or a file
    the process may not read, in the system's words). A file another process holds locked is
    waited for :data:`PROBE_TIMEOUT_S` only, then named as locked ("it is locked by
    another process"), never as damaged. A file not made yet is no refusal (the recorder
    makes the call log at its first start).
    """
    for name in names:
        path = os.path.join(data_dir, name)
        if not os.path.exists(path):
            continue
        try:
            # A directory where the file should be, or a file this process may not read,
            # refuses here in the system's words: SQLite says "disk I/O error" of the one,
            # which the page gave as a failing card.
            with open(path, "rb") as f:
                f.read(1)
        except OSError as exc:  # without the path: the file's name is said
            return name, str(storage_error(OSError(exc.errno, exc.strerror), name))
        try:
            db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=PROBE_TIMEOUT_S)
            try:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                db.close()
        except (sqlite3.Error, OSError) as exc:
            return name, str(storage_error(exc, name))
    return None


def refused_app(data_dir, reason, run_dir=None):
    """A Flask app that answers every path with why the data will not open (module doc)."""
    app = Flask("web")  # the web UI's static files, for its style sheet

    def page_text():
        texts = ["The web UI cannot open the box's data: %s." % reason.rstrip(".")]
        note = startfail.read(run_dir)
        if note is not None:
            texts.append(recorder_cannot_start(note, LocalTime(DEFAULT_ZONE).when))
        else:
            texts.append("Calls are not being recorded while the data will not open.")
        texts.append(
            "Nothing on the card has been changed. Restart the box once; if this page comes "
            "back, the card or its data is failing: a technician checks it with 'linekeeper "
            "verify', and rebuilds a damaged call log from the recordings with 'linekeeper "
            "repair' (docs/recovery.md). The box looks again every few seconds, and this "
            "page reloads itself: the full web UI comes back as soon as the data opens."
        )
        return texts

    @app.route("/api/health")
    def health():
        note = startfail.read(run_dir)
        body = {"ok": False, "data_refused": reason, "recorder_start": note, "alarms": page_text()[:2]}
        return jsonify(body), 503

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def everything(path):
        *what, advice = page_text()
        paragraphs = "\n".join(['<p class="error">%s</p>' % html.escape(t) for t in what])
        paragraphs += "\n<p>%s</p>" % html.escape(advice)
        body = PAGE % {
            "title": TITLE,
            "paragraphs": paragraphs,
            "style": html.escape(app.static_url_path + "/style.css"),
        }
        return body, 503, {"Content-Type": "text/html; charset=utf-8", "Retry-After": "10"}

    @app.after_request
    def headers(resp):
        security_headers(resp, BOX_CSP)
        if request.endpoint != "static":
            resp.headers["Cache-Control"] = "no-store"
        return resp

    return app


def wait_until_it_opens(data_dir, named, stopping, opened, retry_s=RETRY_S, long_s=RETRY_LONG_S):
    """Set ``opened`` and ``stopping`` once the file ``named`` (a :func:`refusing` result,
    or None) opens; without a file named, after ``long_s``."""
    began = time.monotonic()
    while not stopping.wait(retry_s):
        if named is None:
            if time.monotonic() - began < long_s:
                continue
        elif refusing(data_dir) is not None:
            continue
        opened.set()
        stopping.set()
        return


TITLE = "The box's data will not open"
# A page that reads nothing but what it is given (web.unreadable serves it too): it reloads
# itself, so the full page comes back once the data opens.
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="15">
<title>%(title)s — Linekeeper</title>
<link rel="stylesheet" href="%(style)s">
</head>
<body>
<header><span class="brand">Linekeeper</span></header>
<main id="main">
<h1>%(title)s</h1>
%(paragraphs)s
</main>
</body>
</html>
"""
