"""Serve the web UI over HTTPS, with plain HTTP only redirecting to it.

Why cheroot: waitress has no TLS, and the box should not need a second
program (a TLS-terminating proxy such as nginx or stunnel) to configure and
keep in step. cheroot is CherryPy's pure-Python, thread-pooled WSGI server,
maintained with CherryPy and used standalone by many projects; its builtin
SSL adapter uses Python's ``ssl`` module (OpenSSL), so TLS settings and fixes
come with the system's Python. It serves the same WSGI app; a second, tiny
cheroot server on the HTTP port answers every request with a redirect to
the HTTPS URL and serves nothing else.

TLS: 1.2 and later, the ``ssl`` module's default (secure) cipher choice.

In front of cheroot is the box's own network edge (:mod:`web.edge`): it does
TLS and reads every request whole, with deadlines and connection caps,
before a cheroot thread is used, so slow clients cannot take the UI down.
"""

import logging
import os
import shutil
import socket
import sqlite3
import ssl
import sys
import tempfile
import threading
import time
from urllib.parse import quote

from cheroot import wsgi

from firmware.alarmchecks import ArchiveStall
from firmware.errors import LinekeeperError, StorageError
from firmware.product import ProductInfo
from firmware.storage.fsutil import share_own_files
from firmware.update.inbox import MAX_BUNDLE_BYTES

from . import create_app
from .documents import box_reminders
from .edge import Edge, EdgeLimits, from_edge, session_cookie_checker
from .remote import services_for_recorder
from .security import SESSION_COOKIE
from .services import WebConfig, services_for_box
from .setupcode import setup_code_for
from .tls import ensure_certificate

THREADS = 16  # live-status streams hold a thread each for sse_timeout_s
RESERVED_THREADS = 4  # of those, kept for requests from logged-in people
SWEEP_EVERY_S = 30
RENEW_EVERY_S = 3600  # how often the certificate is checked for renewal while serving
# A browser tab closed, a laptop lid shut, a network gone: the client left mid-reply.
CLIENT_GONE = (
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
)

log = logging.getLogger("linekeeper.web")


class _Server(wsgi.Server):
    """cheroot's server, its messages going to logging: a client that went away is one
    quiet line (not a traceback on the console), anything else a warning with its trace."""

    def error_log(self, msg="", level=logging.INFO, traceback=False):
        exc = sys.exc_info()[1]
        if isinstance(exc, CLIENT_GONE):
            log.info("a web client went away mid-reply (%s)", type(exc).__name__)
        elif traceback:
            log.log(max(level, logging.WARNING), "web server: %s", msg, exc_info=True)
        else:
            log.log(level, "web server: %s", msg)


def tls_context(certificate):
    """The server's TLS for ``certificate`` (a :class:`web.tls.Certificate`, its key
    opened with its password: never a clear copy): 1.2 and later, the ssl module's
    default ciphers, HTTP/1.1."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    certificate.load_into(context)
    context.set_alpn_protocols(["http/1.1"])
    return context


def redirect_app(https_port, box_name):
    """A WSGI app that sends every request to the same path on ``https://box_name:https_port``.

    ``box_name`` is the box's configured name or address, never the request's
    ``Host`` header: a forged Host would otherwise send people, from a link
    that looks like the box's, to a look-alike login page elsewhere.
    """

    def app(environ, start_response):
        path = quote(environ.get("PATH_INFO", "/"), safe="/%:@!$&'()*+,;=-._~")
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
        query = quote(environ.get("QUERY_STRING") or "", safe="/%:@!$&'()*+,;=-._~?")
        location = "https://%s:%d%s%s" % (box_name, https_port, path, "?" + query if query else "")
        body = b"This box is served over HTTPS: " + location.encode("ascii", "replace") + b"\n"
        start_response(
            "301 Moved Permanently",
            [
                ("Location", location),
                ("Content-Type", "text/plain"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    return app


def box_name_for(host):
    """The name the box is reached by when it serves on ``host``.

    A specific address is itself; every address (0.0.0.0) is the box's host
    name on the local network (``NAME.local``, which Raspberry Pi OS announces
    by mDNS and the box's certificate names).
    """
    if host in ("0.0.0.0", "", "::"):
        return socket.gethostname() + ".local"
    return "[%s]" % host if ":" in host else host


class WebServer:
    """The web UI on ``https://host:https_port/``, and ``http://host:http_port/`` redirecting.

    :param app: the WSGI app (from :func:`web.create_app`)
    :param certificate: a :class:`web.tls.Certificate`
    :param sweep: called every :data:`SWEEP_EVERY_S` (ends expired sessions
        even when nobody makes a request, so their keys leave memory)
    :param box_name: the name or address the HTTP port redirects to (default:
        :func:`box_name_for` ``host``)

    :meth:`stop` sets the app's ``Web.stopping`` event, which ends the
    live-status streams, so a stop is not held up by an open dashboard.

    Port 0 picks a free port; :attr:`https_port` / :attr:`http_port` tell which
    after :meth:`start`. Raises :class:`OSError` when a port is taken.
    """

    def __init__(
        self,
        app,
        certificate,
        host="127.0.0.1",
        https_port=8443,
        http_port=8080,
        sweep=None,
        box_name=None,
        renew=None,
    ):
        self.app = app
        self.certificate = certificate
        self.host = host
        self.box_name = box_name or box_name_for(host)
        self.on_stop = []  # called after the servers have stopped (the mail thread's close)
        # ``(reason, file or None)`` when it serves only why the data will not open
        # (web/refused.py), else None.
        self.data_refused = None
        # cheroot serves the app on a private Unix socket; only the edge talks to it.
        self._private_dir = tempfile.mkdtemp(prefix="linekeeper-web-")
        self._backend_path = os.path.join(self._private_dir, "app.sock")
        self._https = _Server(
            self._backend_path,
            from_edge(app),
            numthreads=THREADS,
            server_name="linekeeper",
            timeout=30,
            shutdown_timeout=2,
        )
        web = app.extensions.get("linekeeper")
        logged_in = session_cookie_checker(web.sessions, SESSION_COOKIE) if web is not None else None
        self.edge = Edge(
            tls_context(certificate),
            self._backend_path,
            logged_in,
            EdgeLimits(
                backend_slots=THREADS,
                reserved_slots=RESERVED_THREADS,
                large_uploads=((b"/updates/bundle", MAX_BUNDLE_BYTES + 64 * 1024),),
            ),
        )
        self._https_port = https_port
        self._http_port = http_port
        self._http = None
        self._sweep = sweep
        self._renew = renew
        self._renewed_at = time.monotonic()
        self._stop = threading.Event()
        self._threads = []

    @property
    def https_port(self):
        return self.edge.port if self.edge._sock is not None else self._https_port

    @property
    def http_port(self):
        return self._http.bind_addr[1] if self._http is not None else self._http_port

    @property
    def url(self):
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return "https://%s:%d/" % (host, self.https_port)

    @property
    def public_url(self):
        """Where people open the web UI: the box's name (where the HTTP port sends them),
        not an address only the box itself can reach."""
        return "https://%s%s/" % (self.box_name, "" if self.https_port == 443 else ":%d" % self.https_port)

    def start(self):
        if self._threads:
            raise RuntimeError("the web server is already running")
        self._https.prepare()
        os.chmod(self._backend_path, 0o600)
        self.edge.start(self.host, self._https_port)
        self._http = _Server(
            (self.host, self._http_port),
            redirect_app(self.https_port, self.box_name),
            numthreads=2,
            server_name="linekeeper",
            timeout=10,
            shutdown_timeout=1,
        )
        self._http.prepare()
        for name, target in (
            ("https", self._https.serve),
            ("http", self._http.serve),
            ("sweep", self._sweeper),
        ):
            thread = threading.Thread(target=target, name="linekeeper-web-" + name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _sweeper(self):
        while not self._stop.wait(SWEEP_EVERY_S):
            if self._sweep is not None:
                self._sweep()
            if self._renew is not None and time.monotonic() - self._renewed_at >= RENEW_EVERY_S:
                self._renewed_at = time.monotonic()
                try:
                    self.renew_certificate()
                except (OSError, ValueError, ssl.SSLError) as exc:
                    log.error("the HTTPS certificate could not be renewed: %s", exc)

    def renew_certificate(self):
        """Make the certificate again if it is due (``renew()``); new connections get the new one.

        Returns the :class:`web.tls.Certificate` now served.
        """
        certificate = self._renew()
        if certificate.fingerprint != self.certificate.fingerprint:
            # The edge's context is shared by every handshake from now on.
            certificate.load_into(self.edge._ssl)
            self.certificate = certificate
            web = self.app.extensions.get("linekeeper")
            if web is not None:
                web.services.cert_fingerprint = certificate.fingerprint
                audit_replaced(web.services, certificate)
            log.warning(
                "the HTTPS certificate was renewed: its fingerprint is now %s", certificate.fingerprint
            )
        return certificate

    def stop(self):
        """Stop serving: live-status streams end at once (not after ``sse_timeout_s``);
        then each of :attr:`on_stop`."""
        self._stop.set()
        web = getattr(self.app, "extensions", {}).get("linekeeper")
        if web is not None:
            web.stopping.set()
        self.edge.stop()
        for server in (self._http, self._https):
            if server is not None:
                server.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        shutil.rmtree(self._private_dir, ignore_errors=True)
        if web is not None:
            web.sar_jobs.stop()
        for stop in self.on_stop:
            stop()
        self.on_stop = []


def start_web(box, host="127.0.0.1", https_port=8443, http_port=8080, box_name=None, **config):
    """Build and start the web UI for ``box``; returns the running :class:`WebServer`.

    Makes the box's certificate at first start. Raises
    :class:`firmware.errors.LinekeeperError` when a port is taken. ``config`` goes to
    :class:`web.services.WebConfig`. The caller prints :attr:`WebServer.url`,
    the certificate fingerprint (``server.certificate.fingerprint``) and the
    setup code (:func:`web.setupcode.setup_code_for`).
    """
    certificate = ensure_certificate(box.data_dir)
    services = services_for_box(box, cert_fingerprint=certificate.fingerprint)
    server = _serve(
        box.data_dir,
        services,
        certificate,
        host,
        https_port,
        http_port,
        box_name,
        config,
        date_checks=getattr(box, "date_checks", None),
    )
    server.on_stop.append(server.app.extensions["linekeeper"].close)  # as start_web_process's
    return server


def start_web_process(
    data_dir, client, lines, host="127.0.0.1", https_port=8443, http_port=8080, box_name=None, **config
):
    """Like :func:`start_web`, for ``linekeeper web``: the UI beside a recorder
    reached through ``client`` (a :class:`firmware.control.ControlClient`)."""
    certificate = ensure_certificate(data_dir)
    share_own_files(data_dir)  # what an older release made 0600 reaches the recorder again
    try:
        services = services_for_recorder(data_dir, client, lines, cert_fingerprint=certificate.fingerprint)
        server = _serve(data_dir, services, certificate, host, https_port, http_port, box_name, config)
    except (StorageError, OSError, sqlite3.Error) as exc:
        # The data will not open: a page that says why, in place of nothing (web/refused.py).
        return _serve_refused(data_dir, exc, certificate, host, https_port, http_port, box_name)
    # This process delivers the box's mail and uploads to its archive (the recorder has
    # no network on the box: it only queues them).
    from firmware.archive.replicator import uploader

    archive = uploader(data_dir, services.wall_us, services.cipher, services.audit)
    if archive is not None and services.archive is not None:
        # Its round watches the uploads it runs: stalled (the store not reached), an alarm.
        services.mail.checks.append(ArchiveStall(services.alarms, services.archive, services.wall_us))
    services.mail.start()
    server.on_stop.append(services.mail.close)
    if archive is not None:
        archive.start()
        server.on_stop.append(archive.close)
    # Last: a stop (SIGTERM, Ctrl-C) ends the sessions in web.db and forgets the keys their
    # logins unlocked, not the next start and the process's end.
    server.on_stop.append(server.app.extensions["linekeeper"].close)
    return server


def _serve_refused(data_dir, exc, certificate, host, https_port, http_port, box_name):
    from firmware import startfail
    from firmware.signing import run_dir

    from .refused import refused_app, refusing

    named = refusing(data_dir)
    reason = named[1] if named is not None else startfail.describe(exc)
    log.error("the web UI cannot open the box's data (%s): it serves a page that says so", reason)
    app = refused_app(data_dir, reason, run_dir())
    server = _start(data_dir, app, certificate, host, https_port, http_port, box_name, lambda: 0)
    server.data_refused = (reason, named and named[0])
    return server


def audit_replaced(services, certificate):
    """Audit ``certificate`` (a :class:`web.tls.Certificate`) as ``https_replaced`` if it was
    made anew, not renewed (:attr:`~web.tls.Certificate.replaced`): why, the old files kept
    aside, the new fingerprint. The web UI starts all the same when the trail refuses it
    (logged): the box's only admin page matters more than this entry."""
    if not certificate.replaced:
        return
    details = {
        "reason": certificate.replaced,
        "kept": list(certificate.kept),
        "fingerprint": certificate.fingerprint,
    }
    try:
        services.audit.append("system", "https_replaced", None, details, services.wall_us())
    except (LinekeeperError, sqlite3.Error, OSError) as exc:
        log.error("the HTTPS certificate made anew (%s) could not be audited: %s", certificate.replaced, exc)


def _serve(data_dir, services, certificate, host, https_port, http_port, box_name, config, date_checks=None):
    audit_replaced(services, certificate)
    config.setdefault("product", ProductInfo.from_environ(os.environ))
    app = create_app(services, WebConfig(data_dir=data_dir, **config))
    web = app.extensions["linekeeper"]
    date_checks = date_checks or services.date_checks
    if date_checks is not None:
        # The ICO renewal date is a site setting, kept here, as are the reminders' sources:
        # the site flags, and what the checklist's ambers that are alarms read (the key
        # store's backup in the audit trail, the DPIA's review date).
        date_checks.ico_renewal = lambda: getattr(web.site.settings(), "ico_renewal", "")
        date_checks.cert_path = certificate.cert_path
        date_checks.reminders = lambda: box_reminders(web, data_dir)
    setup_code_for(data_dir)  # made now, so it can be printed with the URL
    try:
        return _start(data_dir, app, certificate, host, https_port, http_port, box_name, web.sweep)
    except LinekeeperError:
        web.close()
        raise


def _start(data_dir, app, certificate, host, https_port, http_port, box_name, sweep):
    """Serve ``app``; a port taken is a :class:`LinekeeperError` that names it."""
    server = WebServer(
        app,
        certificate,
        host,
        https_port,
        http_port,
        sweep=sweep,
        box_name=box_name,
        renew=lambda: ensure_certificate(data_dir),
    )
    try:
        server.start()
    except OSError as exc:
        server.stop()
        raise LinekeeperError(
            "cannot serve the web UI on %s, ports %d (HTTPS) and %d (HTTP): %s; choose others "
            "with --https-port and --port" % (host, https_port, http_port, exc)
        ) from None
    return server
