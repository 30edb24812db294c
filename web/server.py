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
"""

import logging
import ssl
import sys
import threading
from urllib.parse import quote

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from firmware.errors import LinekeeperError

from . import create_app
from .services import WebConfig, services_for_box
from .setupcode import setup_code_for
from .tls import ensure_certificate

THREADS = 16          # live-status streams hold a thread each for sse_timeout_s
SWEEP_EVERY_S = 30
# A browser tab closed, a laptop lid shut, a network gone: the client left mid-reply.
CLIENT_GONE = (ssl.SSLEOFError, ssl.SSLZeroReturnError, BrokenPipeError, ConnectionResetError,
               ConnectionAbortedError)

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


class _Adapter(BuiltinSSLAdapter):
    def __init__(self, cert, key):
        super().__init__(cert, key)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2


def redirect_app(https_port, default_host):
    """A WSGI app that sends every request to the same path on HTTPS."""
    def app(environ, start_response):
        host = (environ.get("HTTP_HOST") or "").rsplit(":", 1)[0] if not (
            environ.get("HTTP_HOST", "").endswith("]")) else environ["HTTP_HOST"]
        # The Host header is the client's; keep only what a host name can hold.
        if not host or not all(c.isalnum() or c in ".-[]:" for c in host):
            host = default_host
        path = quote(environ.get("PATH_INFO", "/"), safe="/%:@!$&'()*+,;=-._~")
        query = environ.get("QUERY_STRING")
        location = "https://%s:%d%s%s" % (host, https_port, path, "?" + query if query else "")
        body = b"This box is served over HTTPS: " + location.encode("ascii", "replace") + b"\n"
        start_response("301 Moved Permanently", [
            ("Location", location), ("Content-Type", "text/plain"),
            ("Content-Length", str(len(body))), ("Cache-Control", "no-store")])
        return [body]
    return app


class WebServer:
    """The web UI on ``https://host:https_port/``, and ``http://host:http_port/`` redirecting.

    :param app: the WSGI app (from :func:`web.create_app`)
    :param certificate: a :class:`web.tls.Certificate`
    :param sweep: called every :data:`SWEEP_EVERY_S` (ends expired sessions
        even when nobody makes a request, so their keys leave memory)

    :meth:`stop` sets the app's ``Web.stopping`` event, which ends the
    live-status streams, so a stop is not held up by an open dashboard.

    Port 0 picks a free port; :attr:`https_port` / :attr:`http_port` tell which
    after :meth:`start`. Raises :class:`OSError` when a port is taken.
    """

    def __init__(self, app, certificate, host="127.0.0.1", https_port=8443, http_port=8080,
                 sweep=None):
        self.app = app
        self.certificate = certificate
        self.host = host
        self._https = _Server((host, https_port), app, numthreads=THREADS,
                                  server_name="linekeeper", timeout=30, shutdown_timeout=2)
        self._https.ssl_adapter = _Adapter(certificate.cert_path, certificate.key_path)
        self._http_port = http_port
        self._http = None
        self._sweep = sweep
        self._stop = threading.Event()
        self._threads = []

    @property
    def https_port(self):
        return self._https.bind_addr[1]

    @property
    def http_port(self):
        return self._http.bind_addr[1] if self._http is not None else self._http_port

    @property
    def url(self):
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return "https://%s:%d/" % (host, self.https_port)

    def start(self):
        if self._threads:
            raise RuntimeError("the web server is already running")
        self._https.prepare()
        display_host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        self._http = _Server((self.host, self._http_port),
                                 redirect_app(self.https_port, display_host), numthreads=2,
                                 server_name="linekeeper", timeout=10, shutdown_timeout=1)
        self._http.prepare()
        for name, target in (("https", self._https.serve), ("http", self._http.serve),
                             ("sweep", self._sweeper)):
            thread = threading.Thread(target=target, name="linekeeper-web-" + name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _sweeper(self):
        while not self._stop.wait(SWEEP_EVERY_S):
            if self._sweep is not None:
                self._sweep()

    def stop(self):
        """Stop serving: live-status streams end at once (not after ``sse_timeout_s``)."""
        self._stop.set()
        web = getattr(self.app, "extensions", {}).get("linekeeper")
        if web is not None:
            web.stopping.set()
        for server in (self._http, self._https):
            if server is not None:
                server.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []


def start_web(box, host="127.0.0.1", https_port=8443, http_port=8080, **config):
    """Build and start the web UI for ``box``; returns the running :class:`WebServer`.

    Makes the box's certificate at first start. Raises
    :class:`firmware.errors.LinekeeperError` when a port is taken. ``config`` goes to
    :class:`web.services.WebConfig`. The caller prints :attr:`WebServer.url`,
    the certificate fingerprint (``server.certificate.fingerprint``) and the
    setup code (:func:`web.setupcode.setup_code_for`).
    """
    certificate = ensure_certificate(box.data_dir)
    services = services_for_box(box, cert_fingerprint=certificate.fingerprint)
    app = create_app(services, WebConfig(data_dir=box.data_dir, **config))
    web = app.extensions["linekeeper"]
    setup_code_for(box.data_dir)        # made now, so it can be printed with the URL
    server = WebServer(app, certificate, host, https_port, http_port,
                       sweep=web.sessions.sweep)
    try:
        server.start()
    except OSError as exc:
        server.stop()
        web.close()
        raise LinekeeperError(
            "cannot serve the web UI on %s, ports %d (HTTPS) and %d (HTTP): %s; choose others "
            "with --https-port and --port" % (host, https_port, http_port, exc)) from None
    return server
