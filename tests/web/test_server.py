"""HTTPS serving, the HTTP redirect, the certificate, and the password rules."""

import os
import socket
import sqlite3
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from firmware.calls.calllog import SCHEMA
from web import passwords
from web.server import WebServer, box_name_for, redirect_app
from web.tls import ensure_certificate

pytestmark = pytest.mark.slow  # real HTTPS and HTTP servers on real ports


def test_certificate_is_made_once_and_fingerprinted(tmp_path):
    cert = ensure_certificate(tmp_path, ["localhost", "box.local"], ["192.168.1.20"])
    again = ensure_certificate(tmp_path, ["localhost", "box.local"], ["192.168.1.20"])
    assert again == cert  # made once; made again only when due (tests/web/test_tls.py)
    assert len(cert.fingerprint.split(":")) == 32
    assert oct(os.stat(cert.key_path).st_mode & 0o777) == "0o600"
    with open(cert.cert_path, "rb") as f:
        loaded = x509.load_pem_x509_certificate(f.read())
    names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def call_redirect(host_header, path="/calls", query=""):
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {"PATH_INFO": path, "QUERY_STRING": query}
    if host_header is not None:
        environ["HTTP_HOST"] = host_header
    redirect_app(8443, "127.0.0.1")(environ, start_response)
    return seen["status"], seen["headers"]["Location"]


def test_http_only_redirects_to_https():
    assert call_redirect("127.0.0.1:8080", "/calls", "number=1") == (
        "301 Moved Permanently",
        "https://127.0.0.1:8443/calls?number=1",
    )
    assert call_redirect(None)[1] == "https://127.0.0.1:8443/calls"
    # A forged Host header cannot inject headers or another scheme.
    assert call_redirect("evil.example/\r\nSet-Cookie: x")[1] == "https://127.0.0.1:8443/calls"
    assert call_redirect("box", "/a b")[1] == "https://127.0.0.1:8443/a%20b"


def test_http_redirects_to_the_box_not_the_requests_host():
    # Issue 11: the Host header was copied into Location, an open redirect.
    assert call_redirect("evil.example:8080", "/login")[1] == "https://127.0.0.1:8443/login"
    assert call_redirect("evil.example", "//evil.example/x")[1] == ("https://127.0.0.1:8443/evil.example/x")
    assert call_redirect("box", "/", "a=1\r\nX: y")[1] == "https://127.0.0.1:8443/?a=1%0D%0AX:%20y"
    assert box_name_for("0.0.0.0").endswith(".local")
    assert box_name_for("192.168.1.20") == "192.168.1.20"


def test_the_address_the_box_tells_is_the_one_people_open(box, tmp_path):
    """An appliance serving every address said "open https://127.0.0.1:443/", which only
    the box itself can reach: it says the name its port 80 sends people to."""
    cert = ensure_certificate(tmp_path / "tls-dir", ["localhost"])
    everywhere = WebServer(box.app, cert, "0.0.0.0", 443, 80)
    assert everywhere.public_url == "https://%s/" % box_name_for("0.0.0.0")
    assert WebServer(box.app, cert, "127.0.0.1", 8443, 8080).public_url == "https://127.0.0.1:8443/"
    named = WebServer(box.app, cert, "0.0.0.0", 443, 80, box_name="recorder.office")
    assert named.public_url == "https://recorder.office/"


@pytest.fixture
def served(box, tmp_path):
    cert = ensure_certificate(tmp_path / "tls-dir", ["localhost"])
    server = WebServer(box.app, cert, "127.0.0.1", 0, 0, sweep=box.web.sessions.sweep)
    server.start()
    yield server, cert
    server.stop()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_serves_https_with_tls12_or_later(served):
    server, cert = served
    context = ssl.create_default_context(cafile=cert.cert_path)
    with urllib.request.urlopen(server.url + "security", context=context, timeout=5) as resp:
        assert resp.status == 200
        assert b"Security and updates" in resp.read()
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.minimum_version = ssl.TLSVersion.TLSv1
    with pytest.raises((ssl.SSLError, OSError)):
        with socket.create_connection(("127.0.0.1", server.https_port), timeout=5) as sock:
            with old.wrap_socket(sock):
                pass


def test_plain_http_port_redirects(served):
    server, _ = served

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw):
            return None

    opener = urllib.request.build_opener(NoRedirect())
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open("http://127.0.0.1:%d/login" % server.http_port, timeout=5)
    assert err.value.code == 301
    assert err.value.headers["Location"] == "https://127.0.0.1:%d/login" % server.https_port


def test_double_start_is_refused(served):
    server, _ = served
    with pytest.raises(RuntimeError):
        server.start()


@pytest.mark.parametrize(
    "password, ok",
    [
        ("short", False),
        ("x" * 257, False),
        ("password1", False),
        ("PASSWORD1", False),
        ("  iloveyou1 ", False),
        ("a good long passphrase", False),  # no digit (PCI DSS 8.3.6)
        ("123456789012 3", False),  # no letter
        ("Tr0ub4dor&3", False),  # 11 characters
        ("a good long passphrase 7", True),
        ("Tr0ub4dor&3x", True),
        ("ünïcödé pässwörd 7", True),
    ],
)
def test_password_rules(password, ok):
    assert (passwords.password_problem(password) is None) == ok


def test_common_list_is_shipped_and_large():
    common = passwords.common_passwords()
    assert len(common) > 8000
    assert all(len(p) >= 8 for p in common)


def test_hashes_are_argon2id_and_normalised():
    phc = passwords.hash_password("caf\u00e9 au lait", passwords.CHEAP_COST)
    assert phc.startswith("$argon2id$")
    assert passwords.check_password("cafe\u0301 au lait", phc)  # NFKC: the same password
    assert not passwords.check_password("cafe au lait", phc)
    assert not passwords.check_password("x", "not a hash")


def test_a_taken_port_is_a_clear_error(box, served, tmp_path):
    from firmware.errors import LinekeeperError
    from web.server import start_web

    server, _ = served

    class Clock:
        synchronised = True

        def wall_us(self):
            return 0

    class FakeBox:
        data_dir = str(tmp_path / "other-box")
        status = box.status
        clock = Clock()

    os.makedirs(FakeBox.data_dir)
    db = sqlite3.connect(os.path.join(FakeBox.data_dir, "calls.db"))
    db.executescript(SCHEMA)
    db.close()
    with pytest.raises(LinekeeperError, match="--https-port"):
        start_web(FakeBox(), https_port=server.https_port, http_port=0, hash_cost=passwords.CHEAP_COST)


def _open_stream(server, cert, cookie):
    """A raw TLS connection reading /api/events; returns the socket after the headers came."""
    context = ssl.create_default_context(cafile=cert.cert_path)
    context.check_hostname = False
    sock = context.wrap_socket(
        socket.create_connection(("127.0.0.1", server.https_port), timeout=10), server_hostname="localhost"
    )
    sock.sendall(
        b"GET /api/events HTTP/1.1\r\nHost: localhost\r\nCookie: lk_session=%s\r\n\r\n" % cookie.encode()
    )
    head = b""
    while b"data:" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200")
    return sock


@pytest.fixture
def streaming(box, served):
    """A set-up box whose live streams would last a minute, and an admin's session cookie."""
    import dataclasses

    admin = box.do_setup()
    box.web.config = dataclasses.replace(box.web.config, sse_timeout_s=60)
    return served + (admin.get_cookie("lk_session").value,)


def test_stop_ends_an_open_live_stream_at_once(streaming):
    import time

    server, cert, cookie = streaming
    sock = _open_stream(server, cert, cookie)
    t0 = time.monotonic()
    server.stop()
    stopped_s = time.monotonic() - t0
    rest = b""
    while True:  # the stream was ended by the server: chunked end, close
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    closed_s = time.monotonic() - t0
    sock.close()
    # Ended by the server: a closed chunked stream, or (through the network edge,
    # which stops with the server) the connection closed at once. Events already on
    # their way when stop was called may arrive first, but only as whole chunks.
    while rest and not rest.startswith(b"0\r\n"):
        size, _, after = rest.partition(b"\r\n")
        length = int(size, 16)
        message = after[:length]  # one whole server-sent message (data:, retry:, ...)
        assert message.endswith(b"\n\n") and after[length : length + 2] == b"\r\n", rest[:80]
        rest = after[length + 2 :]
    assert rest in (b"", b"0\r\n\r\n"), rest[-40:]
    assert stopped_s < 10, "stop waited %.1f s for a 60 s stream" % stopped_s
    assert closed_s < 10, "the stream stayed open %.1f s after stop" % closed_s


def test_a_client_that_goes_away_is_one_quiet_log_line(box, streaming, caplog, capfd):
    import logging
    import time

    server, cert, cookie = streaming
    caplog.set_level(logging.INFO, logger="linekeeper.web")
    sock = _open_stream(server, cert, cookie)
    sock.close()  # no TLS close_notify: the tab just went away
    deadline = time.monotonic() + 10
    while not any("went away" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the server never noticed the client leave"
        box.status.set(1, "ringing" if box.status.version % 2 else "idle")  # something to send
        time.sleep(0.2)
    gone = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(gone) == 1 and gone[0].levelno == logging.INFO and not gone[0].exc_info
    assert "Traceback" not in capfd.readouterr().err


def test_a_renewed_certificate_is_served_without_a_restart(box, tmp_path):
    """The hourly check makes the certificate again when due; the next handshake gets it."""
    import hashlib

    directory = tmp_path / "tls-renew"
    addresses = ["192.168.1.20"]
    cert = ensure_certificate(directory, ["localhost"], addresses)
    server = WebServer(
        box.app,
        cert,
        "127.0.0.1",
        0,
        0,
        renew=lambda: ensure_certificate(directory, ["localhost"], addresses),
    )
    server.start()
    try:

        def served_fingerprint():
            pem = ssl.get_server_certificate(("127.0.0.1", server.https_port), timeout=5)
            digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest()
            return ":".join("%02X" % b for b in digest)

        assert served_fingerprint() == cert.fingerprint
        assert server.renew_certificate() == cert  # not due: kept
        addresses[:] = ["192.168.1.21"]  # the box got a new LAN address
        renewed = server.renew_certificate()
        assert renewed.fingerprint != cert.fingerprint
        assert served_fingerprint() == renewed.fingerprint
        assert box.services.cert_fingerprint == renewed.fingerprint
    finally:
        server.stop()


def test_the_web_ui_in_the_boxs_process_tells_its_round_the_reminders(box, tmp_path):
    """With the web UI in the box's own process (start_web), the box's round is the one that
    checks the dates: the web UI tells it the reminders' source (the site flags in web.db,
    config.json), as it tells it the ICO renewal date, so they are raised there too."""
    from firmware.alarmchecks import DateChecks
    from firmware.alarmlog import AlarmLog
    from web.server import start_web

    class Clock:
        synchronised = True

        def wall_us(self):
            return 1_780_000_000_000_000

    data_dir = str(tmp_path / "one-process-box")
    os.makedirs(data_dir)
    db = sqlite3.connect(os.path.join(data_dir, "calls.db"))
    db.executescript(SCHEMA)
    db.close()
    alarm_log = AlarmLog(os.path.join(data_dir, "alarms.db"), Clock())

    class OneProcessBox:
        status = box.status
        clock = Clock()

    one = OneProcessBox()
    one.data_dir, one.alarm_log = data_dir, alarm_log
    one.date_checks = DateChecks(alarm_log, one.clock.wall_us)  # as the box makes it: told nothing
    server = start_web(one, https_port=0, http_port=0, hash_cost=passwords.CHEAP_COST)
    try:
        web = server.app.extensions["linekeeper"]
        with web.db.tx() as conn:
            web.site.mark_setup_complete(conn)
        web.site.set_recovery_confirmed(False)
        one.date_checks()
        on = sorted(a["kind"] for a in alarm_log.banner() if a["cleared_us"] is None)
        assert on == ["recovery_key_unconfirmed", "retention_unset"]
    finally:
        server.stop()
        alarm_log.close()


def test_a_certificate_made_anew_is_audited_at_start_and_at_renewal(box):
    """Issue: a certificate made anew at start (its key did not open, or it was damaged) was
    only logged: nothing in the trail said why browsers warned of a new one from then on."""
    from web.server import _serve

    names = ["localhost"]
    first = ensure_certificate(box.data_dir, names)
    (Path(box.data_dir) / "tls" / "cert.pem").write_bytes(b"cut short")
    certificate = ensure_certificate(box.data_dir, names)
    server = _serve(
        box.data_dir, box.services, certificate, "127.0.0.1", 0, 0, None, {"hash_cost": passwords.CHEAP_COST}
    )
    try:
        (entry,) = box.services.audit.entries(action="https_replaced", limit=5)
        assert entry.actor == "system" and entry.details == {
            "reason": certificate.replaced,
            "kept": list(certificate.kept),
            "fingerprint": certificate.fingerprint,
        }
        assert certificate.fingerprint != first.fingerprint and certificate.kept
        # A renewal that made it anew (the key gone while serving) is audited too; one that
        # was only due is not.
        server._renew = lambda: ensure_certificate(box.data_dir, names)
        os.remove(certificate.key_path)
        renewed = server.renew_certificate()
        assert server.certificate == renewed and renewed.replaced == "its key is missing"
        server._renew = lambda: ensure_certificate(box.data_dir, names + ["lkbox"])
        assert server.renew_certificate().replaced == ""
        entries = box.services.audit.entries(action="https_replaced", limit=5)
        assert [e.details["fingerprint"] for e in entries] == [renewed.fingerprint, certificate.fingerprint]
    finally:
        server.stop()
