"""The box's self-signed HTTPS certificate, made once at first start.

An ECDSA P-256 key and a certificate valid for 10 years, naming
``localhost``, the box's host name (and ``NAME.local``) and 127.0.0.1, kept
in ``DATA_DIR/tls/`` (key mode 0600). No CA will vouch for a box on a LAN,
so people check the SHA-256 fingerprint instead: it is printed on the
console and shown in the UI, to compare with what the browser shows.
"""

import dataclasses
import datetime
import ipaddress
import os
import socket

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from firmware.storage.fsutil import atomic_write, make_private_dir

VALID_DAYS = 3650


@dataclasses.dataclass(frozen=True)
class Certificate:
    cert_path: str
    key_path: str
    fingerprint: str  # SHA-256, "AB:CD:..."


def fingerprint_of(cert):
    digest = cert.fingerprint(hashes.SHA256())
    return ":".join("%02X" % b for b in digest)


def ensure_certificate(data_dir, hostnames=None):
    """The box's certificate, made if missing. Raises :class:`OSError`."""
    directory = os.path.join(data_dir, "tls")
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    if os.path.exists(cert_path) and os.path.exists(key_path):
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        return Certificate(cert_path, key_path, fingerprint_of(cert))
    make_private_dir(directory)
    if hostnames is None:
        host = socket.gethostname()
        hostnames = ["localhost", host, host + ".local"]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, hostnames[-1][:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Linekeeper box"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(h) for h in dict.fromkeys(hostnames)]
    alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A Pi may start with its clock in 1970 or at the last saved time.
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    atomic_write(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        mode=0o600,
    )
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return Certificate(cert_path, key_path, fingerprint_of(cert))
