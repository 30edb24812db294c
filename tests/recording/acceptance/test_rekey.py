"""Issue 19: `linekeeper rekey` -- after it, an old keystore.json with an old password
opens nothing current; killed at any step, every recording stays readable; audited."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from firmware.errors import NotGrantedError, TamperError, WrongPasswordError
from firmware.keypin import RecordingKeyPin
from firmware.recording.store import RecordingStore, read_header
from firmware.rekey import Rekey
from firmware.signing import load_signer
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import KeyStore
from tests.support.recording_lab import CHEAP_KDF, PASSWORD, inbound_calls


def calls(n_per_line):
    return inbound_calls(n_per_line, every_s=8.0, talk_s=3.0)


@pytest.fixture(scope="module")
def recorded(module_lab):
    """A box with recordings on lines 1 and 2, admin ``admin`` and ``sam`` (line 1)."""
    lab = module_lab
    data_dir = lab.init_data_dir(lab.tmp_path / "template-box")
    keys = KeyStore(data_dir, kdf_params=CHEAP_KDF)
    with keys.unlock("admin", PASSWORD) as admin:
        keys.add_slot("sam", "sam's line-1 password", admin, lines=[1])
        recovery = keys.new_recovery_key(admin)
    lab.run(lab.load(lab.scenario_doc(calls(3), lines=2)), data_dir)
    return data_dir, recovery


@pytest.fixture
def box(recorded, tmp_path):
    data_dir = str(tmp_path / "box")
    shutil.copytree(recorded[0], data_dir)
    return data_dir


def opened(data_dir, key):
    """How many of the box's recordings ``key`` decrypts (each checked whole)."""
    store = RecordingStore(data_dir, readonly=True)
    n = 0
    try:
        for row in store.all():
            try:
                data, complete = store.open_audio(row["id"], key)
            except (TamperError, NotGrantedError):
                continue
            assert complete and data
            n += 1
    finally:
        store.close()
    return n


def count(data_dir):
    store = RecordingStore(data_dir, readonly=True)
    try:
        return len(store.all())
    finally:
        store.close()


def with_old_keystore(data_dir, old_keystore, tmp_path):
    """A KeyStore reading an old copy of keystore.json (as someone who kept one would)."""
    old_dir = tmp_path / "old-copy"
    (old_dir / "keys").mkdir(parents=True, mode=0o700)
    (old_dir / "keys" / "keystore.json").write_bytes(old_keystore)
    return KeyStore(old_dir)


def run_rekey(data_dir, progress=None, password=PASSWORD, stop_at=None):
    keystore = KeyStore(data_dir, kdf_params=CHEAP_KDF)
    signer = load_signer(data_dir)
    store = RecordingStore(data_dir, signer=signer)
    audit = AuditLog(os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), signer=signer)
    shown = []
    try:
        rekey = Rekey(
            keystore,
            store,
            RecordingKeyPin(data_dir, signer),
            lambda action, details: audit.append("admin", action, None, details, 1),
            progress=progress or (lambda text: None),
        )
        with keystore.unlock("admin", password) as admin:
            summary = rekey.run(admin, "admin", password, shown.append)
    finally:
        store.close()
        audit.close()
    return summary, shown[0]


def test_after_rekey_an_old_keystore_and_old_passwords_open_nothing_current(
    box, recorded, tmp_path, module_lab
):
    n = count(box)
    assert n == 6
    old = (tmp_path / "keystore-copy.json").write_bytes(
        open(os.path.join(box, "keys", "keystore.json"), "rb").read()
    ) and (tmp_path / "keystore-copy.json").read_bytes()
    old_store = with_old_keystore(box, old, tmp_path)
    with old_store.unlock("admin", PASSWORD) as before:
        assert opened(box, before) == n  # the copy opens everything, before the rekey
    lines = []
    summary, recovery = run_rekey(box, progress=lines.append)
    assert summary["recordings"] == n and summary["kept_slots"] == ["sam"]
    assert lines[-2:] == [
        "rekey: %d/%d recordings re-wrapped" % (n, n),
        "rekey: putting the new keys in force",
    ]
    # The old copy, with the old passwords, opens no current recording.
    with old_store.unlock("admin", PASSWORD) as old_admin:
        assert opened(box, old_admin) == 0
    with old_store.unlock("sam", "sam's line-1 password") as old_sam:
        assert opened(box, old_sam) == 0
    old_recovery = recorded[1]
    with old_store.unlock_recovery(old_recovery) as old_by_recovery:
        assert opened(box, old_by_recovery) == 0
    # Nor does anything left in the recordings folder: no header or key copy holds an old wrap.
    for name in os.listdir(os.path.join(box, "recordings")):
        if name.endswith(".lkrec"):
            assert "wrapped_key" not in read_header(os.path.join(box, "recordings", name))
    # The new keys open everything; sam keeps line 1 (3 recordings) without his password changing.
    current = KeyStore(box)
    with current.unlock("admin", PASSWORD) as admin:
        assert opened(box, admin) == n
    with current.unlock("sam", "sam's line-1 password") as sam:
        assert opened(box, sam) == 3
    with current.unlock_recovery(recovery) as by_recovery:
        assert opened(box, by_recovery) == n
    with pytest.raises(WrongPasswordError):
        current.unlock_recovery(old_recovery)
    assert not os.path.exists(os.path.join(box, "keys", "rekey.json"))
    assert not os.path.exists(os.path.join(box, "keys", "keystore.next.json"))
    log = AuditLog(os.path.join(box, "audit.db"), os.path.join(box, "audit.head"), readonly=True)
    try:
        phases = [e.details["phase"] for e in log.entries(limit=-1, action="rekey", newest_first=False)]
    finally:
        log.close()
    assert phases == ["started", "done"]
    # The recordings' seals, the audit trail and the pins all still check, with the new key.
    status, out, err = module_lab.verify(box)
    assert status == 0, out + err
    assert "(authenticated)" in out
    # The box records again, to the new line keys (re-pinned: no tamper alarm).
    run = module_lab.run(module_lab.load(module_lab.scenario_doc(calls(1), lines=2)), box)
    assert not [a for a in run.alarms if a.kind == "key_tampered"], run.alarms
    assert count(box) == n + 2
    with current.unlock("admin", PASSWORD) as admin:
        assert opened(box, admin) == n + 2
    with old_store.unlock("admin", PASSWORD) as old_admin:
        assert opened(box, old_admin) == 0


def power_cut(*args):
    raise PowerCut()


STEPS = ["_rewrap", "show", "put_next_in_force", "promote_next_keys", "repin"]


class PowerCut(BaseException):
    """Stands for a kill: nothing after it runs, and nothing catches it."""


@pytest.mark.parametrize("step", STEPS)
def test_a_rekey_cut_at_any_step_leaves_everything_readable_and_is_resumed(box, step, monkeypatch):
    n = count(box)
    if step == "_rewrap":
        real = Rekey._rewrap

        def cut(self, rows, *args):
            real(self, rows[: len(rows) // 2], *args)
            raise PowerCut()

        monkeypatch.setattr(Rekey, "_rewrap", cut)
    elif step == "show":
        pass
    elif step == "put_next_in_force":
        monkeypatch.setattr(KeyStore, "put_next_in_force", power_cut)
    elif step == "promote_next_keys":
        monkeypatch.setattr(RecordingStore, "promote_next_keys", power_cut)
    elif step == "repin":
        monkeypatch.setattr(RecordingKeyPin, "repin", power_cut)
    keystore = KeyStore(box, kdf_params=CHEAP_KDF)
    signer = load_signer(box)
    store = RecordingStore(box, signer=signer)

    def show(text):
        if step == "show":
            raise PowerCut()

    try:
        with pytest.raises(PowerCut):
            with keystore.unlock("admin", PASSWORD) as admin:
                Rekey(keystore, store, RecordingKeyPin(box, signer), lambda *a: None).run(
                    admin, "admin", PASSWORD, show
                )
    finally:
        store.close()
    monkeypatch.undo()
    # Cut: whichever key store is in force opens every recording.
    with KeyStore(box).unlock("admin", PASSWORD) as admin:
        assert opened(box, admin) == n
    committed = step in ("promote_next_keys", "repin")
    assert os.path.exists(os.path.join(box, "keys", "rekey.json"))
    # The next rekey first finishes (or undoes) the cut one, then runs.
    store = RecordingStore(box, signer=signer)
    try:
        rk = Rekey(KeyStore(box, kdf_params=CHEAP_KDF), store, RecordingKeyPin(box, signer), lambda *a: None)
        assert rk.resume() == ("finished" if committed else "undone")
    finally:
        store.close()
    with KeyStore(box).unlock("admin", PASSWORD) as admin:
        assert opened(box, admin) == n
    summary, _ = run_rekey(box)
    assert summary["recordings"] == n
    with KeyStore(box).unlock("admin", PASSWORD) as admin:
        assert opened(box, admin) == n


@pytest.mark.slow
def test_the_cli_killed_mid_rekey_leaves_everything_readable(box, lab):
    """A real SIGKILL of `linekeeper rekey` in the middle of its re-wrapping."""
    n = count(box)
    pw = lab.password_file()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    slow = (
        "import time, sys\n"
        "from firmware import rekey\n"
        "real = rekey.Rekey._rewrap\n"
        "def slowly(self, rows, *a):\n"
        "    self._progress('rekey: starting')\n"
        "    time.sleep(30)\n"
        "rekey.Rekey._rewrap = slowly\n"
        "from firmware.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", slow, "rekey", "--data-dir", box, "--password-file", pw],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert "rekey: starting" in (proc.stdout.readline().strip() for _ in range(3))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with KeyStore(box).unlock("admin", PASSWORD) as admin:
        assert opened(box, admin) == n
    out = subprocess.run(
        [sys.executable, "-m", "firmware.cli", "rekey", "--data-dir", box, "--password-file", pw],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "an unfinished rekey was undone" in out.stdout
    assert "rekey: %d/%d recordings re-wrapped" % (n, n) in out.stdout
    with KeyStore(box).unlock("admin", PASSWORD) as admin:
        assert opened(box, admin) == n
    assert json.loads(open(os.path.join(box, "keys", "keystore.json")).read())["version"] == 2


@pytest.mark.slow
def test_a_power_cut_at_any_write_or_sync_of_a_rekey_leaves_everything_readable(box, tmp_path):
    """Finer than the steps above: a cut at every write, sync, rename and removal of the
    rekey, the key store, the pin, the recordings store and fsutil, and after every sync
    of a database (:class:`~support.powercut.AfterImage`; a database as last synced).
    On each image: the key store in force opens every recording, the next rekey
    finishes or undoes the cut one, and then runs."""
    import random

    from firmware import keypin, rekey
    from firmware.storage import keystore as keystore_module

    from support.powercut import AfterImage

    n = count(box)
    images = []

    def on_call(name):
        image = str(tmp_path / ("cut-%03d" % (len(images) + 1)))
        model.image(image, random.Random(len(images)))
        images.append((image, name))

    model = AfterImage(box, on_call, modules=(rekey, keypin, keystore_module))
    with model.observing():
        run_rekey(box)
    kinds = {}
    for image, name in images:
        kinds[name] = kinds.get(name, 0) + 1
        what = "%s (%s)" % (image, name)
        with KeyStore(image).unlock("admin", PASSWORD) as admin:
            assert opened(image, admin) == n, what
        signer = load_signer(image)
        store = RecordingStore(image, signer=signer)
        try:
            rk = Rekey(
                KeyStore(image, kdf_params=CHEAP_KDF), store, RecordingKeyPin(image, signer), lambda *a: None
            )
            rk.resume()
        finally:
            store.close()
        with KeyStore(image).unlock("admin", PASSWORD) as admin:
            assert opened(image, admin) == n, what
        summary, _ = run_rekey(image)
        assert summary["recordings"] == n, what
        with KeyStore(image).unlock("admin", PASSWORD) as admin:
            assert opened(image, admin) == n, what
    print(
        "rekey cuts: %d (%s)" % (len(images), ", ".join("%d %s" % (k, v) for v, k in sorted(kinds.items())))
    )


@pytest.mark.parametrize("stopped_in", ["_rewrap", "_finish"])
def test_a_rekey_stopped_by_ctrl_c_says_which_keys_are_in_force(box, lab, monkeypatch, stopped_in):
    """Ctrl-C stopped `linekeeper rekey` with status 130 and not a word: a technician did
    not know whether the old keys or the new ones were in force, nor whether a recovery
    key shown was one to keep. It now says which, and what to run."""

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Rekey, stopped_in, interrupted)
    status, out, err = lab.cli("rekey", "--data-dir", box, "--password-file", lab.password_file())
    assert status == 130
    if stopped_in == "_rewrap":
        assert "before the new keys were put in force" in err and "no new recovery key was shown" in err
        assert "New recovery key" not in out and "shown above" not in err
    else:
        assert "after the new keys were put in force" in err and "(keep it)" in err
        assert "New recovery key" in out
    assert "Run `linekeeper rekey` again" in err
    monkeypatch.undo()
    status, out, err = lab.cli("rekey", "--data-dir", box, "--password-file", lab.password_file())
    assert status == 0, err
    with KeyStore(box).unlock("admin", PASSWORD) as admin:
        assert opened(box, admin) == count(box)
