"""The box's self-signed HTTPS certificate, made once at first start.

An ECDSA P-256 key and a certificate valid for 825 days, naming
``localhost``, the box's host name (and ``NAME.local``), 127.0.0.1 and the
box's LAN addresses, for server authentication only (key usage: digital
signature; extended key usage: server auth), kept in ``DATA_DIR/tls/``. It is
made again, with the same key, 30 days before it expires, when it was made
under a wrong clock, or when the box's names or addresses changed (checked at
start and every hour by the web server). No CA will vouch for a box on a LAN,
so people check the SHA-256 fingerprint instead: it is printed on the
console and shown in the UI, to compare with what the browser shows.

The private key is never on the card in clear: ``tls/key.sealed.pem`` (mode
0600) is encrypted PKCS#8 under a password derived from the box's unattended
secrets (:meth:`firmware.secretbox.SecretBox.derive`: ``secrets.key`` on the
card and the board's identity: a Pi's serial of 32 unknown bits at most, which
someone with the card alone can search offline, or a machine id that is on the
card; not the vault's storage key, which this process may not have yet when it
starts; see :mod:`firmware.secretbox`). The
password is derived at every start, never stored, and handed to ``ssl`` with
the key's file (:attr:`Certificate.password`). A key an
earlier release kept in clear (``tls/key.pem``) is encrypted at the next
start, the same key, so the certificate and its fingerprint stay; the
clear file is then overwritten and removed (a cut at any point leaves a key
that opens). Not while the update that brought this release is on trial
(:func:`firmware.update.inbox.on_trial`): a rollback then starts the release
before, which knows only the clear file and, finding none, would make a new
key in clear and a new certificate that browsers warn of. The clear file goes
at the first check after the update is marked good (the next start, or the
web server's hourly check).

Whatever is wrong with these files, the web UI starts: it is the box's only
admin page. A key that does not open (``secrets.key`` lost or replaced, the
card in another board, the file damaged) or is gone gets a new key and
certificate; a certificate that does not load (damaged, cut short) gets a new
one for the key. The files replaced are kept aside in ``tls/``, renamed (not
deleted) to say why: ``key.sealed.pem.does-not-open.TIME``,
``cert.pem.unreadable.TIME`` and so on. The new fingerprint is logged, the
:class:`Certificate` says what was replaced (:attr:`Certificate.replaced`,
which the web server audits), and browsers warn of the new certificate.
"""

import dataclasses
import datetime
import ipaddress
import logging
import os
import socket

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from firmware.secretbox import SecretBox
from firmware.storage.fsutil import atomic_write, fsync_dir, make_private_dir, shred
from firmware.update.inbox import on_trial as update_on_trial

log = logging.getLogger(__name__)

VALID_DAYS = 825  # the longest a browser accepts for a server certificate it is told to trust
RENEW_DAYS = 30  # renewed this long before it expires (checked at start and every hour)
CLOCK_SKEW_DAYS = 1  # not_valid_before is set this far back (a Pi's clock may lag at boot)
KEY_FILE = "key.sealed.pem"  # the key, encrypted
CLEAR_KEY_FILE = "key.pem"  # where releases before kept it in clear
PURPOSE = "web UI HTTPS key"  # SecretBox.derive's purpose for the key's password


@dataclasses.dataclass(frozen=True)
class Certificate:
    cert_path: str
    key_path: str
    fingerprint: str  # SHA-256, "AB:CD:..."
    password: bytes = dataclasses.field(default=b"", repr=False)  # the key file's, for ssl
    # Made anew at this call, not renewed: why (a sentence), and the old files kept aside
    # (their names in tls/). Empty when nothing was replaced.
    replaced: str = dataclasses.field(default="", compare=False)
    kept: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    def load_into(self, context):
        """Give the :class:`ssl.SSLContext` ``context`` this certificate and its key."""
        context.load_cert_chain(self.cert_path, self.key_path, self.password)


def fingerprint_of(cert):
    digest = cert.fingerprint(hashes.SHA256())
    return ":".join("%02X" % b for b in digest)


def box_addresses():
    """The box's own non-loopback IP addresses (text), as far as it can tell without sending.

    From its host name's addresses and from the source address the kernel
    would pick for a route out (a UDP socket connected to a documentation
    address: connecting one sends nothing).
    """
    found = []
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.append(info[4][0])
    except OSError:
        pass
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((target, 9))
                found.append(sock.getsockname()[0])
        except OSError:
            pass
    addresses = []
    for text in found:
        try:
            address = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            continue
        if not (address.is_loopback or address.is_unspecified or address.is_link_local):
            addresses.append(str(address))
    return list(dict.fromkeys(addresses))


def default_hostnames():
    host = socket.gethostname()
    return ["localhost", host, host + ".local"]


def renewal_reason(cert, hostnames, addresses, now):
    """Why ``cert`` must be made again (a sentence), or None.

    It expires within :data:`RENEW_DAYS`; it was made under a wrong clock (it
    starts in the future, or was made when the clock said 1970 and has long
    expired); it does not name every host name and address the box has now;
    or it lacks the key usage and server-auth purpose browsers check.
    """
    if cert.not_valid_after_utc - now < datetime.timedelta(days=RENEW_DAYS):
        return "it expires on %s" % cert.not_valid_after_utc.date()
    if cert.not_valid_before_utc > now + datetime.timedelta(days=CLOCK_SKEW_DAYS):
        return "it was made under a clock ahead of now (valid from %s)" % cert.not_valid_before_utc.date()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        cert.extensions.get_extension_for_class(x509.KeyUsage)
    except x509.ExtensionNotFound:
        return "it has no key usage or server-auth purpose (made by an older version)"
    if ExtendedKeyUsageOID.SERVER_AUTH not in usage:
        return "it is not for a server"
    names = set(san.get_values_for_type(x509.DNSName))
    ips = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    missing = [h for h in hostnames if h not in names] + [a for a in addresses if a not in ips]
    if missing:
        return "it does not name %s" % ", ".join(missing)
    return None


def ensure_certificate(data_dir, hostnames=None, addresses=None, now=None, secrets=None, on_trial=None):
    """The box's certificate: made if missing, made again when :func:`renewal_reason` says so.

    ``hostnames`` (default :func:`default_hostnames`) and ``addresses``
    (default :func:`box_addresses`) go into its SAN with 127.0.0.1; ``now`` is
    an aware datetime (default: the clock); ``secrets`` is the box's
    :class:`firmware.secretbox.SecretBox` (default: ``data_dir``'s, this board's);
    ``on_trial`` is whether an update is on trial (default: ``data_dir``'s update inbox
    says so). The key is kept across renewals; one kept in clear is encrypted first
    (its clear file kept while an update is on trial). A key
    that does not open or is gone, or a certificate that does not load, is
    replaced, the old files kept aside (see the module's text and
    :attr:`Certificate.replaced`). Raises :class:`OSError` (the card, not the files).
    """
    directory = os.path.join(data_dir, "tls")
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, KEY_FILE)
    hostnames = default_hostnames() if hostnames is None else list(hostnames)
    addresses = box_addresses() if addresses is None else list(addresses)
    now = datetime.datetime.now(datetime.UTC) if now is None else now
    secrets = SecretBox(data_dir) if secrets is None else secrets
    make_private_dir(directory)
    password = secrets.derive(PURPOSE).hex().encode("ascii")
    if on_trial is None:
        on_trial = update_on_trial(data_dir) is not None
    key = _seal_clear_key(directory, key_path, password, keep_clear=on_trial)
    if key is None:
        key = _open_key(key_path, password)
    replaced, kept = "", []
    if key is None and os.path.exists(key_path):
        replaced = (
            "its key does not open (secrets.key lost or replaced, the card in another board, "
            "or the file damaged)"
        )
        kept.append(_keep_aside(key_path, "does-not-open", now))
        kept.append(_keep_aside(cert_path, "key-does-not-open", now))
    elif key is None and os.path.exists(cert_path):
        replaced = "its key is missing"
        kept.append(_keep_aside(cert_path, "key-missing", now))
    cert = None
    if key is not None and os.path.exists(cert_path):
        cert, problem = _read_cert(cert_path)
        if cert is None:
            replaced = "the certificate does not load (%s)" % problem
            kept.append(_keep_aside(cert_path, "unreadable", now))
    if cert is not None:
        if _public(cert.public_key()) != _public(key.public_key()):
            reason = "it is not the key's"
        else:
            reason = renewal_reason(cert, hostnames, addresses, now)
        if reason is None:
            return Certificate(cert_path, key_path, fingerprint_of(cert), password)
        log.warning("the HTTPS certificate is made again: %s", reason)
    made_key = key is None
    if made_key:
        key = ec.generate_private_key(ec.SECP256R1())
        atomic_write(key_path, _sealed_pem(key, password), mode=0o600)
    cert = _build(key, hostnames, addresses, now)
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    kept = tuple(name for name in kept if name)
    certificate = Certificate(cert_path, key_path, fingerprint_of(cert), password, replaced, kept)
    if replaced:
        log.warning(
            "the HTTPS certificate was made anew, %s: %s; the old files are kept aside in %s (%s). "
            "Browsers will warn of a changed certificate: its fingerprint is now %s, check it "
            "there as at first start",
            "a new key" if made_key else "the same key",
            replaced,
            directory,
            ", ".join(kept) or "none",
            certificate.fingerprint,
        )
    return certificate


def _read_cert(cert_path):
    """``(certificate, None)``, or ``(None, why)`` when ``cert_path`` does not hold one that
    can be read whole (its key and extensions too: they are read lazily)."""
    with open(cert_path, "rb") as f:
        data = f.read()
    try:
        cert = x509.load_pem_x509_certificate(data)
        cert.public_key()
        cert.extensions  # noqa: B018 - parsed on first use: a damaged one raises here
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return None, str(exc)[:200] or type(exc).__name__
    return cert, None


def _keep_aside(path, why, now):
    """Rename ``path`` to ``NAME.WHY.TIME`` beside it (``.2``, ``.3``… if that is taken),
    durably; the new name (a file name), or "" when there was no file."""
    if not os.path.exists(path):
        return ""
    base = "%s.%s.%s" % (path, why, now.strftime("%Y%m%dT%H%M%SZ"))
    target, n = base, 1
    while os.path.lexists(target):
        n += 1
        target = "%s.%d" % (base, n)
    os.rename(path, target)
    fsync_dir(os.path.dirname(path))
    return os.path.basename(target)


def _public(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _sealed_pem(key, password):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


def _open_key(key_path, password):
    """The key in ``key_path``, or None: missing, or it does not open with ``password``."""
    try:
        with open(key_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        return serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def _seal_clear_key(directory, key_path, password, keep_clear=False):
    """A key an earlier release kept in clear (``tls/key.pem``), written encrypted to
    ``key_path`` and then shredded; the key, or None when there was none. With
    ``keep_clear`` (an update on trial: the release before may come back) the clear file
    is left as it is, and the encrypted copy written only if it is not this key's.

    The steps, each synced: the encrypted copy replaces ``key_path`` whole, the clear
    file is overwritten with zeros, then removed. A cut before the first leaves the clear
    key, done again at the next start; after it the encrypted one opens, and what is
    left of the clear file (intact, or zeros) is shredded then. A clear key found beside
    an encrypted one is the newer (a rollback to a release that made its own): it wins.
    """
    clear_path = os.path.join(directory, CLEAR_KEY_FILE)
    try:
        with open(clear_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        key = serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None  # the zeros a cut shred left
    if key is not None and keep_clear:
        sealed = _open_key(key_path, password)
        if sealed is None or _public(sealed.public_key()) != _public(key.public_key()):
            atomic_write(key_path, _sealed_pem(key, password), mode=0o600)
        log.warning(
            "the HTTPS key is on the card in clear (%s) and is kept so while the update is on "
            "trial (a rollback's release knows only that file); it is overwritten once the "
            "update is marked good",
            clear_path,
        )
        return key
    if key is not None:
        atomic_write(key_path, _sealed_pem(key, password), mode=0o600)
        log.warning(
            "the HTTPS key was on the card in clear (%s): it is now encrypted (%s), the same "
            "key, and the clear copy overwritten",
            clear_path,
            key_path,
        )
    shred(clear_path)
    return key


def _build(key, hostnames, addresses, now):
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, hostnames[-1][:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Linekeeper box"),
        ]
    )
    alt = [x509.DNSName(h) for h in dict.fromkeys(hostnames)]
    ips = dict.fromkeys(["127.0.0.1", *addresses])
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A Pi may start with its clock in 1970 or at the last saved time.
        .not_valid_before(now - datetime.timedelta(days=CLOCK_SKEW_DAYS))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # ECDSA signs the handshake: digital signature only (RFC 5280 4.2.1.3).
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
