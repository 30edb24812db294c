"""The box's HTTPS certificate: its LAN names, key usage and renewal (issue 19); its key,
only encrypted on the card."""

import datetime
import logging
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from firmware.secretbox import SecretBox
from web import tls

from support.cardscan import clear_private_keys, scan

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


def sealed_key(certificate):
    with open(certificate.key_path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), certificate.password)


def as_an_earlier_release_made_it(data_dir):
    """The certificate and its key in clear (tls/key.pem), as releases before kept them."""
    key = ec.generate_private_key(ec.SECP256R1())
    directory = os.path.join(data_dir, "tls")
    os.makedirs(directory)
    with open(os.path.join(directory, "key.pem"), "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    cert = tls._build(key, NAMES, ADDRESSES, NOW)
    with open(os.path.join(directory, "cert.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, tls.fingerprint_of(cert)


def served_by(certificate):
    """The certificate as the web server loads it (web/server.py)."""
    from web.server import tls_context

    return tls_context(certificate)


def test_the_key_is_on_the_card_only_encrypted(tmp_path):
    """Issue: tls/key.pem held the key in clear; the card alone could pose as the box."""
    certificate = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW)
    with open(certificate.key_path, "rb") as f:
        assert f.read().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert oct(os.stat(certificate.key_path).st_mode & 0o777) == "0o600"
    key = sealed_key(certificate)
    assert clear_private_keys(tmp_path, [key]) == []
    # The password is the box's: secrets.key and this board's identity, stored nowhere.
    assert certificate.password == SecretBox(tmp_path).derive(tls.PURPOSE).hex().encode()
    assert scan(tmp_path, [certificate.password.decode()]) == []
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(
            open(certificate.key_path, "rb").read(), SecretBox(tmp_path, b"another board").derive(tls.PURPOSE)
        )
    served_by(certificate)
    assert certificate.password not in repr(certificate).encode()
    # The scan finds a clear copy, in any form.
    probe = tmp_path / "probe"
    probe.mkdir()
    for name, fmt in (
        ("pkcs8", serialization.PrivateFormat.PKCS8),
        ("sec1", serialization.PrivateFormat.TraditionalOpenSSL),
    ):
        pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        (probe / name).write_bytes(b"x" + pem)
        (probe / (name + ".bare")).write_bytes(b"".join(pem.splitlines()[1:-1]))
        (probe / (name + ".der")).write_bytes(
            key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
        )
    assert sorted(clear_private_keys(probe, [key])) == sorted(os.listdir(probe))


def test_a_key_an_earlier_release_kept_in_clear_is_encrypted_and_its_fingerprint_kept(tmp_path, caplog):
    key, fingerprint = as_an_earlier_release_made_it(tmp_path)
    certificate = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW)
    assert certificate.fingerprint == fingerprint
    assert sealed_key(certificate).private_numbers() == key.private_numbers()
    assert not os.path.exists(tmp_path / "tls" / "key.pem")
    assert sorted(os.listdir(tmp_path / "tls")) == ["cert.pem", tls.KEY_FILE]
    assert clear_private_keys(tmp_path, [key]) == []
    assert "in clear" in caplog.text
    served_by(certificate)
    assert tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW) == certificate


def test_a_cut_at_any_step_of_the_migration_leaves_a_key_that_opens(tmp_path, monkeypatch):
    """Each step that changes the card (the encrypted key's rename into place, the clear
    file's overwrite, its removal) cut in turn: the next start has the same key and
    certificate, and no clear copy is left."""
    from firmware.storage import fsutil

    from support.cuts import PowerCut, Steps, _Counted

    cut_at = 1
    while True:
        data_dir = tmp_path / str(cut_at)
        key, fingerprint = as_an_earlier_release_made_it(data_dir)
        SecretBox(data_dir).derive(tls.PURPOSE)  # secrets.key made beforehand: not a step
        steps = Steps(cut_at)
        with monkeypatch.context() as patch:
            patch.setattr(fsutil, "os", _Counted(os, {"replace", "pwrite", "unlink"}, steps))
            try:
                tls.ensure_certificate(data_dir, NAMES, ADDRESSES, now=NOW)
                cut = False
            except PowerCut:
                cut = True
        certificate = tls.ensure_certificate(data_dir, NAMES, ADDRESSES, now=NOW)
        assert certificate.fingerprint == fingerprint, steps.names
        assert sealed_key(certificate).private_numbers() == key.private_numbers()
        assert sorted(os.listdir(data_dir / "tls")) == ["cert.pem", tls.KEY_FILE]
        assert clear_private_keys(data_dir, [key]) == []
        served_by(certificate)
        if not cut:
            break
        cut_at += 1
    assert steps.names == ["os.replace", "os.pwrite", "os.unlink"]
    assert cut_at == 4


def test_after_a_rollback_the_older_release_s_clear_key_wins(tmp_path):
    """A rollback to a release that keeps the key in clear makes a key and certificate of
    its own (it finds no tls/key.pem); back on this release, that clear key is the one its
    certificate names, so it is the one encrypted."""
    tls.ensure_certificate(tmp_path / "box", NAMES, ADDRESSES, now=NOW)
    os.remove(tmp_path / "box" / "tls" / "cert.pem")
    made = tmp_path / "older"
    key, fingerprint = as_an_earlier_release_made_it(made)
    for name in ("cert.pem", "key.pem"):
        os.replace(made / "tls" / name, tmp_path / "box" / "tls" / name)
    certificate = tls.ensure_certificate(tmp_path / "box", NAMES, ADDRESSES, now=NOW)
    assert certificate.fingerprint == fingerprint
    assert sealed_key(certificate).private_numbers() == key.private_numbers()


def test_a_certificate_not_for_the_key_is_made_again_for_it(tmp_path):
    first = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW)
    other = tls.ensure_certificate(tmp_path / "other", NAMES, ADDRESSES, now=NOW)
    os.replace(other.cert_path, first.cert_path)
    certificate = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW)
    assert certificate.fingerprint not in (first.fingerprint, other.fingerprint)
    assert load(certificate).public_key() == sealed_key(certificate).public_key()
    served_by(certificate)


@pytest.mark.parametrize("how", ["secrets.key lost", "another board"])
def test_a_key_that_does_not_open_is_made_again_and_the_new_fingerprint_logged(tmp_path, caplog, how):
    first = tls.ensure_certificate(
        tmp_path, NAMES, ADDRESSES, now=NOW, secrets=SecretBox(tmp_path, b"board 1")
    )
    first_key, first_cert = open(first.key_path, "rb").read(), open(first.cert_path, "rb").read()
    board = b"board 1"
    if how == "secrets.key lost":
        os.remove(tmp_path / "secrets.key")
    else:
        board = b"board 2"
    certificate = tls.ensure_certificate(
        tmp_path, NAMES, ADDRESSES, now=NOW, secrets=SecretBox(tmp_path, board)
    )
    assert certificate.fingerprint != first.fingerprint
    assert certificate.key_path == first.key_path
    served_by(certificate)
    (warning,) = [r for r in caplog.records if "does not open" in r.getMessage()]
    assert certificate.fingerprint in warning.getMessage() and warning.levelno == logging.WARNING
    # The old key and certificate are kept aside, not overwritten: with the old secrets.key or
    # board back, a technician can put them back and browsers trust the box as before.
    assert certificate.kept == (
        "key.sealed.pem.does-not-open.20261203T090000Z",
        "cert.pem.key-does-not-open.20261203T090000Z",
    )
    old_key = (tmp_path / "tls" / certificate.kept[0]).read_bytes()
    assert old_key == first_key and old_key.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert (tmp_path / "tls" / certificate.kept[1]).read_bytes() == first_cert
    assert "a new key" in warning.getMessage() and certificate.kept[0] in warning.getMessage()
    assert (
        tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW, secrets=SecretBox(tmp_path, board))
        == certificate
    )


def damaged_extension(path):
    """A certificate whose DER is whole but whose SAN extension is not one (read lazily)."""
    from cryptography.x509.oid import ExtensionOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "lkbox")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=90))
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\xff"), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize("damage", ["cut short", "empty", "not a certificate", "an extension damaged"])
def test_a_certificate_that_does_not_load_is_made_again_for_the_key_and_kept_aside(tmp_path, caplog, damage):
    """Issue: a damaged tls/cert.pem raised at start and the web UI, the box's only admin page,
    did not start. It starts with a new certificate for the same key; the damaged file is kept
    aside under a name that says why; the log gives the new fingerprint."""
    first = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW)
    key = open(first.key_path, "rb").read()
    cert_file = tmp_path / "tls" / "cert.pem"
    if damage == "cut short":
        cert_file.write_bytes(cert_file.read_bytes()[:300])
    elif damage == "empty":
        cert_file.write_bytes(b"")
    elif damage == "not a certificate":
        cert_file.write_bytes(b"\x00" * 512)
    else:
        damaged_extension(cert_file)
    damaged = cert_file.read_bytes()
    later = NOW + datetime.timedelta(days=3)
    certificate = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=later)
    served_by(certificate)
    assert certificate.fingerprint != first.fingerprint
    assert open(certificate.key_path, "rb").read() == key  # the same key
    assert "certificate does not load" in certificate.replaced
    assert certificate.kept == ("cert.pem.unreadable.20261206T090000Z",)
    assert (tmp_path / "tls" / certificate.kept[0]).read_bytes() == damaged
    (warning,) = [r for r in caplog.records if "made anew" in r.getMessage()]
    said = warning.getMessage()
    assert certificate.fingerprint in said and certificate.kept[0] in said and "the same key" in said
    again = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=later)
    assert again == certificate and again.replaced == "" and again.kept == ()


def test_a_key_gone_beside_its_certificate_gets_a_new_one_and_the_old_certificate_kept(tmp_path):
    first = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW)
    os.remove(first.key_path)
    certificate = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW)
    served_by(certificate)
    assert certificate.fingerprint != first.fingerprint and certificate.replaced == "its key is missing"
    assert certificate.kept == ("cert.pem.key-missing.20261203T090000Z",)
    # Twice in the same second: the second is kept under a name of its own.
    os.remove(first.key_path)
    again = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW)
    assert again.kept == ("cert.pem.key-missing.20261203T090000Z.2",)
    kept = [*certificate.kept, *again.kept]
    assert sorted(os.listdir(tmp_path / "tls")) == sorted(["cert.pem", tls.KEY_FILE, *kept])


def update_at(data_dir, step):
    """The update inbox's progress note as the updater leaves it at ``step``."""
    import json

    from firmware.update.inbox import inbox_dir

    os.makedirs(inbox_dir(data_dir), exist_ok=True)
    with open(os.path.join(inbox_dir(data_dir), "progress.json"), "w") as f:
        json.dump({"step": step, "at_us": 1796567465 * 10**6, "version": "2.0.0"}, f)


def test_while_the_update_is_on_trial_the_clear_key_is_kept_for_the_release_before(tmp_path, caplog):
    """Issue: the first start of this release shredded tls/key.pem at once, while the update
    that brought it was still on trial; a rollback then started the release before, which
    knows only that file: it made a new key, in clear, and a new certificate browsers warn
    of. The clear file now stays until the update is marked good, then goes."""
    key, fingerprint = as_an_earlier_release_made_it(tmp_path)
    clear = (tmp_path / "tls" / "key.pem").read_bytes()
    update_at(tmp_path, "health")
    certificate = tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW)
    served_by(certificate)
    assert certificate.fingerprint == fingerprint
    assert sealed_key(certificate).private_numbers() == key.private_numbers()
    assert (tmp_path / "tls" / "key.pem").read_bytes() == clear
    assert "kept so while the update is on trial" in caplog.text
    sealed = open(certificate.key_path, "rb").read()
    assert tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW) == certificate
    assert open(certificate.key_path, "rb").read() == sealed  # not written again at each check
    # Rolled back, the release before finds its pair as it left it: the same certificate.
    with open(tmp_path / "tls" / "cert.pem", "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    assert tls.fingerprint_of(cert) == fingerprint
    older_key = serialization.load_pem_private_key(clear, None)
    assert cert.public_key() == older_key.public_key()
    # Marked good: the next check encrypts it for good and the clear file goes.
    update_at(tmp_path, "mark_good")
    assert tls.ensure_certificate(tmp_path, NAMES, ADDRESSES, now=NOW) == certificate
    assert sorted(os.listdir(tmp_path / "tls")) == ["cert.pem", tls.KEY_FILE]
    assert clear_private_keys(tmp_path, [key]) == []
