"""The box's HTTPS certificate: its LAN names, key usage and renewal (issue 19)."""

import datetime

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from web import tls

NAMES = ["localhost", "lkbox", "lkbox.local"]
ADDRESSES = ["192.168.1.20", "fd00::20"]
NOW = datetime.datetime(2026, 12, 3, 9, 0, tzinfo=datetime.UTC)


def load(certificate):
    with open(certificate.cert_path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def test_the_certificate_names_the_box_on_the_lan_and_is_for_a_server_only(tmp_path):
    cert = load(tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == NAMES
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", *ADDRESSES]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not (usage.value.key_cert_sign or usage.value.key_encipherment or usage.value.crl_sign)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.not_valid_after_utc - NOW == datetime.timedelta(days=tls.VALID_DAYS)
    assert tls.VALID_DAYS <= 825


def test_it_is_kept_while_it_is_good(tmp_path):
    first = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW)
    later = NOW + datetime.timedelta(days=tls.VALID_DAYS - tls.RENEW_DAYS - 1)
    assert tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=later) == first


def test_it_is_renewed_before_it_expires_with_the_same_key(tmp_path):
    first = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW)
    key = open(first.key_path, "rb").read()
    due = NOW + datetime.timedelta(days=tls.VALID_DAYS - tls.RENEW_DAYS + 1)
    renewed = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=due)
    assert renewed.fingerprint != first.fingerprint
    assert load(renewed).not_valid_after_utc > due + datetime.timedelta(days=tls.VALID_DAYS - 2)
    assert open(renewed.key_path, "rb").read() == key


def test_one_made_under_a_wrong_clock_is_made_again(tmp_path):
    booted_in_1970 = datetime.datetime(1970, 1, 1, 0, 5, tzinfo=datetime.UTC)
    first = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=booted_in_1970)
    assert tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW).fingerprint != first.fingerprint
    ahead = tmp_path / "ahead"
    first = tls.ensure_certificate(ahead, NAMES, ADDRESSES, now=NOW + datetime.timedelta(days=400))
    renewed = tls.ensure_certificate(ahead, NAMES, ADDRESSES, now=NOW)
    assert renewed.fingerprint != first.fingerprint
    assert load(renewed).not_valid_before_utc < NOW


def test_a_new_address_or_name_renews_it(tmp_path):
    first = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW)
    moved = tls.ensure_certificate(tmp_path, NAMES, ["192.168.1.21"], now=NOW)
    assert moved.fingerprint != first.fingerprint
    assert tls.renewal_reason(load(moved), NAMES, ["192.168.1.21"], NOW) is None
    assert "lkbox2" in tls.renewal_reason(load(moved), ["lkbox2"], [], NOW)


def test_the_box_s_addresses_are_real_addresses():
    for text in tls.box_addresses():
        assert text not in ("127.0.0.1", "::1", "0.0.0.0")
