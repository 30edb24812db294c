"""A real SMTP server for the mail tests: aiosmtpd on 127.0.0.1 with STARTTLS and login."""

import datetime as dt
import ipaddress
import ssl

import pytest

from support.ports import free_port

USER, PASSWORD = "box@example.com", "smtp secret 42"


def make_certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1; returns (cert path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


class SmtpServer:
    """aiosmtpd requiring STARTTLS, then AUTH; ``messages`` holds what was accepted."""

    def __init__(self, tmp_path, port=None):
        self.cert, self.key = make_certificate(tmp_path)
        self.port = free_port() if port is None else port
        self.messages = []
        self.logins = []
        self.refuse = set()  # recipients refused with 550 (a mailbox that does not exist)
        self.controller = None

    def client_context(self):
        return ssl.create_default_context(cafile=self.cert)

    def start(self):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        server = self

        class Handler:
            async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
                if address in server.refuse:
                    return "550 5.1.1 no such mailbox"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp, session, envelope):
                server.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
                return "250 OK"

        def authenticator(smtp, session, envelope, mechanism, data):
            ok = (data.login.decode(), data.password.decode()) == (USER, PASSWORD)
            server.logins.append((data.login.decode(), ok))
            return AuthResult(success=ok, handled=False)

        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.cert, self.key)
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=tls,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=authenticator,
        )
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server(tmp_path):
    server = SmtpServer(tmp_path)
    server.start()
    yield server
    server.stop()


def server_settings(server, **extra):
    """Mail settings for ``server`` (an :class:`SmtpServer`): STARTTLS, its login, alarms to
    ops@example.com (tied to the account :data:`OPS`) in 15-minute windows; ``extra``
    fields added or replaced."""
    from firmware.mail.settings import MailSettings

    fields = dict(
        host="127.0.0.1",
        port=server.port,
        security="starttls",
        username=USER,
        sender="box@example.com",
        alarm_to=("ops@example.com",),
        rate_window_s=900,
    )
    fields.update(extra)
    # Each recipient tied to the installer's account (ops_account), unless told otherwise.
    fields.setdefault("alarm_accounts", tuple((a, OPS) for a in fields["alarm_to"]))
    return MailSettings(**fields)


# Alarm recipients are tied to this account, an installer's, in the tests: a line's alarm
# is mailed only to a recipient whose account sees that line (firmware.mail.alarms).
OPS = "ops"
OPS_TIED = (("ops@example.com", OPS),)  # MailSettings.alarm_accounts: ops@example.com is ops's


def ops_account(data_dir, name=OPS, roles="installer", lines=""):
    """Make account ``name`` (``roles``, ``lines`` as web.db keeps them) in ``data_dir``'s
    web.db, as the web UI would (no password that opens anything)."""
    import os

    from web.db import WebDb

    db = WebDb(os.path.join(os.fspath(data_dir), "web.db"))
    with db.tx() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO users (name, pw_hash, roles, lines, created_us, pw_changed_us)"
            " VALUES (?, 'x', ?, ?, 0, 0)",
            (name, roles, lines),
        )
    db.close()
