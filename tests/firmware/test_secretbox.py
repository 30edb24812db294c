"""SecretBox's per-purpose secrets (derive), beside the sealed ones they must not disturb."""

import base64
import json
import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware import signing
from firmware.archive.queue import read_secret, write_secret
from firmware.archive.store import ArchiveError
from firmware.clock import SimClock
from firmware.errors import TamperError
from firmware.mail.service import MailService
from firmware.mail.settings import MailSettings, MailSettingsStore
from firmware.secretbox import PREFIX, VAULT_PREFIX, SecretBox, is_sealed
from firmware.storage.fieldseal import (
    RUN_KEY_FILE,
    FieldCipher,
    FieldSealError,
    LazyFieldCipher,
    load_field_cipher,
)


def test_a_derived_secret_is_the_box_s_own_and_one_per_purpose(tmp_path):
    box = SecretBox(tmp_path, b"board 1")
    secret = box.derive("web UI HTTPS key")
    assert len(secret) == 32
    assert SecretBox(tmp_path, b"board 1").derive("web UI HTTPS key") == secret  # every start
    assert box.derive("something else") != secret
    assert SecretBox(tmp_path, b"board 2").derive("web UI HTTPS key") != secret  # the card moved
    os.remove(tmp_path / "secrets.key")
    assert box.derive("web UI HTTPS key") != secret  # secrets.key lost


def test_values_sealed_before_derive_existed_still_open(tmp_path):
    """The key that seals the named secrets (mail.json, archive.secret) is the same as
    before: what a box sealed then opens now, and no derived secret is that key."""
    box = SecretBox(tmp_path, b"board 1")
    box.derive("x")  # makes secrets.key
    with open(tmp_path / "secrets.key", "rb") as f:
        old_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"board 1", info=b"linekeeper secrets v1"
        ).derive(f.read())
    nonce = bytes(12)
    sealed = (
        PREFIX
        + base64.b64encode(nonce + ChaCha20Poly1305(old_key).encrypt(nonce, b"pw", b"mail.password")).decode()
    )
    assert box.open("mail.password", sealed) == "pw"
    assert old_key not in (box.derive("secrets v1"), box.derive(""))


def test_a_key_the_other_service_made_a_moment_before_is_read_not_replaced(tmp_path, monkeypatch):
    """Both services start at boot with no secrets.key yet: the one that found none and makes
    its own must not replace the one the other made meanwhile (whatever that one sealed, the
    web UI's HTTPS key first, would no longer open)."""
    theirs, ours = bytes(range(32)), bytes(range(32, 64))

    def urandom(n):  # the other service writes its key just before ours is drawn
        (tmp_path / "secrets.key").write_bytes(theirs)
        return ours[:n]

    box = SecretBox(tmp_path, identity=b"board")
    monkeypatch.setattr("firmware.secretbox.os.urandom", urandom)
    mine = box.derive("https key")
    monkeypatch.undo()
    assert (tmp_path / "secrets.key").read_bytes() == theirs
    assert mine == SecretBox(tmp_path, identity=b"board").derive("https key")


# ---------------------------------------------------------------- with the vault's storage key
def vault_box(tmp_path):
    """A data directory whose storage data key the (simulated) MCU vault wraps, the
    recorder's copy of it in ``run``: ``(data_dir, run_dir)``."""
    data_dir, run = tmp_path / "box", tmp_path / "run"
    data_dir.mkdir()
    load_field_cipher(str(data_dir), vault=McuLink(SimMcu(SimClock()).bus), run_dir=str(run))
    return str(data_dir), str(run)


def boxes(data_dir, run, **kw):
    """``(with the key, before the recorder handed it over)``: one card, one board."""
    return (
        SecretBox(data_dir, b"board 1", cipher=LazyFieldCipher(data_dir, run), **kw),
        SecretBox(data_dir, b"board 1", cipher=LazyFieldCipher(data_dir, None), **kw),
    )


def test_with_the_storage_key_a_secret_needs_the_vault_as_well(tmp_path):
    data_dir, run = vault_box(tmp_path)
    box, card_alone = boxes(data_dir, run, on_trial=lambda: False)
    sealed = box.seal("mail.password", "pw")
    assert sealed.startswith(VAULT_PREFIX) and is_sealed(sealed)
    assert box.open("mail.password", sealed) == "pw"
    # The card with this board's identity but no vault: no key to open it.
    with pytest.raises(FieldSealError, match="MCU vault"):
        card_alone.open("mail.password", sealed)
    # Nor does the key of secrets.key and the identity alone, named as the old kind.
    with pytest.raises(TamperError):
        card_alone.open("mail.password", PREFIX + sealed[len(VAULT_PREFIX) :])
    # Another field's name, or another board, does not open it either.
    with pytest.raises(TamperError):
        box.open("archive.secret", sealed)
    other = SecretBox(data_dir, b"board 2", cipher=LazyFieldCipher(data_dir, run), on_trial=lambda: False)
    with pytest.raises(TamperError):
        other.open("mail.password", sealed)
    assert box.reseal("mail.password", sealed) is None  # nothing more to do


def test_what_seals_with_the_storage_key_is_derived_from_it_never_the_key_itself(tmp_path):
    data_dir, run = vault_box(tmp_path)
    with open(os.path.join(run, RUN_KEY_FILE), "rb") as f:
        data_key = f.read()
    part = FieldCipher(data_key).derive(b"unattended secrets v2")
    assert len(part) == 32 and part != data_key
    assert part != FieldCipher(data_key).derive(b"another purpose")
    # The sealing key is secrets.key and the identity with that part: not the data key.
    box, _ = boxes(data_dir, run, on_trial=lambda: False)
    sealed = box.seal("mail.password", "pw")
    raw = base64.b64decode(sealed[len(VAULT_PREFIX) :])
    with open(os.path.join(data_dir, "secrets.key"), "rb") as f:
        file_key = f.read()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"board 1", info=b"linekeeper secrets v2").derive(
        file_key + part
    )
    assert ChaCha20Poly1305(key).decrypt(raw[:12], raw[12:], b"mail.password") == b"pw"
    for wrong in (
        data_key,
        HKDF(algorithm=hashes.SHA256(), length=32, salt=b"board 1", info=b"linekeeper secrets v2").derive(
            file_key + data_key
        ),
    ):
        with pytest.raises(InvalidTag):
            ChaCha20Poly1305(wrong).decrypt(raw[:12], raw[12:], b"mail.password")


def test_before_the_key_is_handed_over_it_seals_as_before_and_is_sealed_again_after(tmp_path):
    data_dir, run = vault_box(tmp_path)
    box, card_alone = boxes(data_dir, run, on_trial=lambda: False)
    early = card_alone.seal("mail.password", "pw")  # the web UI before the recorder started
    assert early.startswith(PREFIX)
    assert card_alone.open("mail.password", early) == "pw"  # it opens then: nobody locked out
    assert card_alone.reseal("mail.password", early) is None  # not yet
    again = box.reseal("mail.password", early)
    assert again.startswith(VAULT_PREFIX) and box.open("mail.password", again) == "pw"


def test_while_an_update_is_on_trial_nothing_is_sealed_with_the_storage_key(tmp_path):
    """Its rollback's release knows only the old kind: the password must still open there."""
    data_dir, run = vault_box(tmp_path)
    trial = [True]
    box = SecretBox(data_dir, b"board 1", cipher=LazyFieldCipher(data_dir, run), on_trial=lambda: trial[0])
    old = box.seal("mail.password", "pw")
    assert old.startswith(PREFIX)
    assert box.reseal("mail.password", old) is None
    trial[0] = False  # marked good
    assert box.reseal("mail.password", old).startswith(VAULT_PREFIX)


def test_a_box_without_the_vault_keeps_the_old_scheme(tmp_path):
    box = SecretBox(tmp_path, b"board 1", on_trial=lambda: False)  # no storage.key: it seals nothing
    sealed = box.seal("mail.password", "pw")
    assert sealed.startswith(PREFIX) and box.open("mail.password", sealed) == "pw"
    assert box.reseal("mail.password", sealed) is None


# ---------------------------------------------------------------- the stored values, re-sealed
def old_mail_json(data_dir, password):
    """mail.json as an older release saved it: the password sealed without the storage key."""
    old = SecretBox(data_dir, b"board 1", cipher=LazyFieldCipher(data_dir, None), on_trial=lambda: False)
    MailSettingsStore(data_dir, old).save(MailSettings(username="box", sender="box@example.org"), "pw")
    with open(os.path.join(data_dir, "mail.json"), encoding="utf-8") as f:
        doc = json.load(f)
    assert doc["password"].startswith(PREFIX)
    return doc


def test_an_old_mail_password_opens_and_is_sealed_again_with_the_storage_key(tmp_path):
    data_dir, run = vault_box(tmp_path)
    before = old_mail_json(data_dir, "pw")
    box, card_alone = boxes(data_dir, run, on_trial=lambda: False)
    store = MailSettingsStore(data_dir, box)
    assert store.password(store.get()) == "pw"  # the old value opens, as the fallback
    assert MailSettingsStore(data_dir, card_alone).reseal() is False  # no key here yet: left
    assert store.reseal() is True
    with open(os.path.join(data_dir, "mail.json"), encoding="utf-8") as f:
        after = json.load(f)
    assert after["password"].startswith(VAULT_PREFIX)
    assert dict(after, password=None) == dict(before, password=None)  # nothing else changed
    assert store.password(store.get()) == "pw"
    with pytest.raises(FieldSealError):  # the card alone no longer opens it
        MailSettingsStore(data_dir, card_alone).password(store.get())
    assert store.reseal() is False  # done once


def test_a_mail_password_re_seal_cut_short_leaves_the_old_one_and_is_done_next_time(tmp_path, monkeypatch):
    data_dir, run = vault_box(tmp_path)
    before = old_mail_json(data_dir, "pw")
    box, _ = boxes(data_dir, run, on_trial=lambda: False)
    store = MailSettingsStore(data_dir, box)

    def cut(path, data, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("firmware.mail.settings.atomic_write", cut)
    with pytest.raises(OSError):
        store.reseal()
    monkeypatch.undo()
    with open(os.path.join(data_dir, "mail.json"), encoding="utf-8") as f:
        assert json.load(f) == before
    assert store.password(store.get()) == "pw"  # still opens, with the old key
    assert store.reseal() is True
    assert store.get().password.startswith(VAULT_PREFIX) and store.password(store.get()) == "pw"


def test_the_mail_round_seals_the_password_again(tmp_path):
    """The web UI's mail thread does it at its next round once the recorder handed the key
    over, mail server set or not."""
    data_dir, run = vault_box(tmp_path)
    old_mail_json(data_dir, "pw")
    box, _ = boxes(data_dir, run, on_trial=lambda: False)
    mail = MailService(data_dir, lambda: 0, box, cipher=LazyFieldCipher(data_dir, run))
    try:
        mail.tick()
    finally:
        mail.close()
    assert mail.store.get().password.startswith(VAULT_PREFIX)
    assert mail.store.password(mail.store.get()) == "pw"


def test_an_old_archive_secret_opens_and_is_sealed_again_and_a_cut_recovers(tmp_path, monkeypatch):
    data_dir, run = vault_box(tmp_path)
    box, card_alone = boxes(data_dir, run, on_trial=lambda: False)
    write_secret(data_dir, "s3 secret", card_alone)  # before the key was handed over
    path = os.path.join(data_dir, "archive.secret")
    with open(path, encoding="utf-8") as f:
        old = f.read()
    assert old.startswith(PREFIX)
    assert read_secret(data_dir, card_alone) == "s3 secret"  # no key: opens, left as it is
    with open(path, encoding="utf-8") as f:
        assert f.read() == old

    def cut(path, data, **kw):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("firmware.archive.queue.fsutil.atomic_write", cut)
    assert read_secret(data_dir, box) == "s3 secret"  # the upload goes on
    monkeypatch.undo()
    with open(path, encoding="utf-8") as f:
        assert f.read() == old
    assert read_secret(data_dir, box) == "s3 secret"
    with open(path, encoding="utf-8") as f:
        assert f.read().startswith(VAULT_PREFIX)
    with pytest.raises(ArchiveError, match="MCU vault") as raised:
        read_secret(data_dir, card_alone)
    assert not raised.value.permanent  # it opens once the recorder has started


def test_no_re_seal_without_the_lock(tmp_path):
    """A lock file that cannot be opened (a folder or a link put in its place) lets a Settings
    save or `archive set-secret` go on unlocked; the re-seal, which rewrites the file from what
    it read before, does not: it would put the old settings, or the old secret, back over one
    saved meanwhile. It waits for a lock that opens; the password and secret open as before."""
    data_dir, run = vault_box(tmp_path)
    before = old_mail_json(data_dir, "pw")
    box, card_alone = boxes(data_dir, run, on_trial=lambda: False)
    write_secret(data_dir, "s3 secret", card_alone)
    secret_path = os.path.join(data_dir, "archive.secret")
    with open(secret_path, encoding="utf-8") as f:
        old_secret = f.read()
    for lock in ("mail.json.lock", "archive.secret.lock"):  # as a save left them
        os.remove(os.path.join(data_dir, lock))
    os.mkdir(os.path.join(data_dir, "mail.json.lock"))
    os.symlink(os.path.join(tmp_path, "elsewhere"), secret_path + ".lock")
    mail = MailService(data_dir, lambda: 0, box, cipher=LazyFieldCipher(data_dir, run))
    try:
        mail.tick()  # the web UI's mail round
    finally:
        mail.close()
    with open(os.path.join(data_dir, "mail.json"), encoding="utf-8") as f:
        assert json.load(f) == before
    assert mail.store.password(mail.store.get()) == "pw"
    assert read_secret(data_dir, box) == "s3 secret"  # the upload goes on
    with open(secret_path, encoding="utf-8") as f:
        assert f.read() == old_secret
    assert not os.path.lexists(os.path.join(tmp_path, "elsewhere"))
    # Once the lock opens, the next round does it.
    os.rmdir(os.path.join(data_dir, "mail.json.lock"))
    os.remove(secret_path + ".lock")
    assert mail.store.reseal() is True
    assert read_secret(data_dir, box) == "s3 secret"
    with open(secret_path, encoding="utf-8") as f:
        assert f.read().startswith(VAULT_PREFIX)


def test_a_vault_sealed_value_on_a_box_without_the_vault_is_said_to_be_another_box_s(tmp_path):
    """A mail.json or archive.secret copied from a box with the MCU's vault to one without
    (a restore by hand, a card moved to a HAT without the MCU after its storage.key was
    removed) never opens there: it is to be entered again, not waited for the recorder."""
    data_dir, run = vault_box(tmp_path)
    theirs, _ = boxes(data_dir, run, on_trial=lambda: False)
    sealed = theirs.seal("archive.secret", "s3 secret")
    assert sealed.startswith(VAULT_PREFIX)
    plain = tmp_path / "plain"  # no storage.key: a box that does not seal
    plain.mkdir()
    ours = SecretBox(str(plain), b"board 1", cipher=LazyFieldCipher(str(plain), None), on_trial=lambda: False)
    with pytest.raises(TamperError, match="enter it again"):
        ours.open("archive.secret", sealed)
    with open(plain / "archive.secret", "w", encoding="utf-8") as f:
        f.write(sealed + "\n")
    os.chmod(plain / "archive.secret", 0o600)
    with pytest.raises(ArchiveError, match="set-secret") as raised:
        read_secret(str(plain), ours)
    assert raised.value.permanent  # not tried again and again


def test_a_secret_found_in_clear_is_not_sealed_over_one_set_meanwhile(tmp_path, monkeypatch):
    """The uploader reads archive.secret in clear (an older release's) and seals it in place;
    `archive set-secret` run just then must win: the clear value read before it is not
    written back over the new secret."""
    import firmware.archive.queue as queue

    data_dir, run = vault_box(tmp_path)
    box, _ = boxes(data_dir, run, on_trial=lambda: False)
    path = os.path.join(data_dir, "archive.secret")
    with open(path, "w", encoding="utf-8") as f:
        f.write("old secret\n")
    os.chmod(path, 0o600)
    real_lock, raced = queue.fsutil.file_lock, []

    def lock(*args, **kw):  # set-secret runs after the uploader read the file
        if not raced:
            raced.append(True)
            write_secret(data_dir, "new secret", box)
        return real_lock(*args, **kw)

    monkeypatch.setattr(queue.fsutil, "file_lock", lock)
    assert read_secret(data_dir, box) == "old secret"  # what this upload had read
    monkeypatch.undo()
    assert raced
    assert read_secret(data_dir, box) == "new secret"


def test_the_uploader_seals_the_archive_secret_again_once_the_key_is_there(tmp_path, monkeypatch):
    """The web UI's uploader reads archive.secret once, for the client it then keeps: when
    that was before the recorder handed the key over (the web UI starts first at boot) or
    while the update that brought this release was on trial, the secret stayed of the old
    kind until the web UI restarted, months maybe. Each round of the uploader seals it again
    once it can, with a client already made (here: a bucket given, never asked)."""
    from firmware.archive.replicator import Replicator
    from firmware.archive.settings import ArchiveSettings
    from firmware.calls.calllog import CallLog
    from firmware.recording.store import RecordingStore

    data_dir, run = vault_box(tmp_path)
    CallLog(os.path.join(data_dir, "calls.db"), SimClock()).close()
    RecordingStore(data_dir).close()
    early = SecretBox(data_dir, cipher=LazyFieldCipher(data_dir, None), on_trial=lambda: False)
    write_secret(data_dir, "s3 secret", early)
    path = os.path.join(data_dir, "archive.secret")
    with open(path, encoding="utf-8") as f:
        assert f.read().startswith(PREFIX)

    class Unasked:
        name = "acme-calls"

        def head(self, key):
            raise AssertionError("nothing to upload: the store is not asked")

        put = head

    settings = ArchiveSettings.from_dict(
        {
            "enabled": True,
            "endpoint": "https://s3.example.com",
            "bucket": "acme-calls",
            "box_id": "leeds-1",
            "access_key_id": "AKIA1",
            "org_public_key": base64.b64encode(bytes(range(1, 33))).decode(),
        }
    )
    rep = Replicator(data_dir, settings, bucket=Unasked())
    try:
        monkeypatch.delenv("LINEKEEPER_RUN_DIR", raising=False)
        rep.step()  # the recorder has not handed the key over yet: left as it is
        with open(path, encoding="utf-8") as f:
            assert f.read().startswith(PREFIX)
        monkeypatch.setenv("LINEKEEPER_RUN_DIR", run)
        rep.step()
    finally:
        rep.close()
    with open(path, encoding="utf-8") as f:
        assert f.read().startswith(VAULT_PREFIX)
    assert read_secret(data_dir, SecretBox(data_dir, cipher=LazyFieldCipher(data_dir, run))) == "s3 secret"


def test_set_secret_says_when_it_sealed_without_the_storage_key(tmp_path, monkeypatch, capsys):
    """`linekeeper archive set-secret` from a shell that does not name the run directory
    cannot have the storage key: the secret is stored of the old kind (the uploader seals it
    again, but the card may keep this copy). The command says so and how to run it."""
    from firmware.cli import main

    data_dir, run = vault_box(tmp_path)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("s3 secret\n")
    os.chmod(secret_file, 0o600)
    path = os.path.join(data_dir, "archive.secret")
    monkeypatch.delenv("LINEKEEPER_RUN_DIR", raising=False)
    monkeypatch.setattr(signing, "APPLIANCE_RUN_DIR", str(tmp_path / "no-recorder"))  # not started
    assert main(["archive", "set-secret", "--data-dir", data_dir, "--secret-file", str(secret_file)]) == 0
    with open(path, encoding="utf-8") as f:
        assert f.read().startswith(PREFIX)
    err = capsys.readouterr().err
    assert (
        "without the storage key (LINEKEEPER_RUN_DIR is not set, and there is no %s (the box's run "
        "directory): start the recorder" % (tmp_path / "no-recorder") in err
    )
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(tmp_path / "elsewhere"))
    assert main(["archive", "set-secret", "--data-dir", data_dir, "--secret-file", str(secret_file)]) == 0
    assert "LINEKEEPER_RUN_DIR is %s, which holds no copy of it" % (tmp_path / "elsewhere") in (
        capsys.readouterr().err
    )
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", run)  # as on the box, beside the running recorder
    assert main(["archive", "set-secret", "--data-dir", data_dir, "--secret-file", str(secret_file)]) == 0
    with open(path, encoding="utf-8") as f:
        assert f.read().startswith(VAULT_PREFIX)
    assert "storage key" not in capsys.readouterr().err


def test_set_secret_from_a_root_shell_finds_the_box_s_run_directory(tmp_path, monkeypatch, capsys):
    """Run as the docs say, from a root shell that does not name LINEKEEPER_RUN_DIR, on the
    box with the recorder running: the secret is sealed with the storage key, which the
    recorder left in the appliance's run directory."""
    from firmware.cli import main

    data_dir, run = vault_box(tmp_path)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("s3 secret\n")
    os.chmod(secret_file, 0o600)
    monkeypatch.delenv("LINEKEEPER_RUN_DIR", raising=False)
    monkeypatch.setattr(signing, "APPLIANCE_RUN_DIR", run)  # /run/linekeeper on the box
    assert main(["archive", "set-secret", "--data-dir", data_dir, "--secret-file", str(secret_file)]) == 0
    with open(os.path.join(data_dir, "archive.secret"), encoding="utf-8") as f:
        assert f.read().startswith(VAULT_PREFIX)
    assert capsys.readouterr().err == ""
    assert read_secret(data_dir, SecretBox(data_dir, cipher=LazyFieldCipher(data_dir, run))) == "s3 secret"


def test_an_archive_secret_an_older_release_sealed_again_opens_back_on_this_one(tmp_path):
    """A release from before the storage key, started by hand after this one re-sealed the
    secret, takes the lksec2: text for a secret in clear and seals that text (lksec1:).
    Back on this release the secret opens from inside it and the file holds the lksec2:
    value again: it need not be set a second time."""
    data_dir, run = vault_box(tmp_path)
    box, card_alone = boxes(data_dir, run, on_trial=lambda: False)
    write_secret(data_dir, "s3 secret", box)
    path = os.path.join(data_dir, "archive.secret")
    with open(path, encoding="utf-8") as f:
        ours = f.readline().strip()
    assert ours.startswith(VAULT_PREFIX)
    with open(path, "w", encoding="utf-8") as f:  # what the older release's read made of it
        f.write(card_alone.seal("archive.secret", ours) + "\n")
    assert read_secret(data_dir, box) == "s3 secret"
    with open(path, encoding="utf-8") as f:
        assert f.readline().strip() == ours


def test_weaker_is_the_old_kind_on_a_box_that_seals_only(tmp_path):
    """What the E-mail page's note rests on: a value of the old kind on a box with the vault,
    whether this process has the key yet or not (an update on trial); never the new kind, and
    never on a box without the vault, whose values are all of the old kind."""
    data_dir, run = vault_box(tmp_path)
    box, card_alone = boxes(data_dir, run, on_trial=lambda: False)
    early = card_alone.seal("mail.password", "pw")
    assert card_alone.weaker(early) and box.weaker(early)
    assert not box.weaker(box.reseal("mail.password", early))
    on_trial = SecretBox(data_dir, b"board 1", cipher=LazyFieldCipher(data_dir, run), on_trial=lambda: True)
    assert on_trial.weaker(on_trial.seal("mail.password", "pw"))
    os.makedirs(tmp_path / "no-vault")
    plain = SecretBox(tmp_path / "no-vault", b"board 1", on_trial=lambda: False)
    assert not plain.weaker(plain.seal("mail.password", "pw"))


@pytest.mark.parametrize(
    "text, mode, said",
    [
        (
            b"s3 secret\n",
            0o644,
            "linekeeper: warning: the secret file %s can be read by other users (mode 644); make it "
            "private (chmod 600) or delete it after use",
        ),
        (b"\n", 0o600, "linekeeper: the secret file %s is empty"),
        (None, None, "linekeeper: cannot read the secret file %s: No such file or directory"),
        (b"\xff\xfe\n", 0o600, "linekeeper: the secret file %s is not text (UTF-8)"),
    ],
)
def test_set_secret_names_its_file_the_secret_file(tmp_path, monkeypatch, capsys, text, mode, said):
    """`archive set-secret --secret-file F` called F "the password file" in its warning and
    its refusals (a file not UTF-8 text ended in a traceback)."""
    from firmware.cli import main

    data_dir, run = vault_box(tmp_path)
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", run)
    secret_file = tmp_path / "secret.txt"
    if text is not None:
        secret_file.write_bytes(text)
        os.chmod(secret_file, mode)
    main(["archive", "set-secret", "--data-dir", data_dir, "--secret-file", str(secret_file)])
    err = capsys.readouterr().err
    assert err.splitlines()[0] == said % secret_file, err
    assert "password" not in err
    stored = os.path.exists(os.path.join(data_dir, "archive.secret"))
    assert stored == (text == b"s3 secret\n")
