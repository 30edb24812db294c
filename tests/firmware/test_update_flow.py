"""The update flow's decisions with fake RAUC, slots and recorder (fast); the real
thing, with RAUC, is tests/system/test_updates.py."""

import errno
import fcntl
import json
import os
import subprocess
import sys

import pytest

from firmware.control import RecorderUnavailable
from firmware.errors import UpdateError
from firmware.update.flow import COPY_CHUNK, LOCK_NAME, Updater, UpdateSettings, _try_lock, format_report
from firmware.update.rauc import Rauc, _reason

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTALL_CHECK = os.path.join(ROOT, "scripts", "system", "rauc", "install-check")


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def monotonic(self):
        return self.t

    def sleep(self, s):
        self.t += s


class FakeClient:
    """Answers ``snapshot`` from ``busy(t)``: the lines busy at time t, or None (no recorder)."""

    def __init__(self, clock, busy):
        self.clock = clock
        self.busy = busy

    def call(self, op, **kw):
        busy = self.busy(self.clock.t)
        if busy is None:
            raise RecorderUnavailable("not running")
        if op == "hello":
            return {"pid": 1, "lines": 2}
        return {
            "lines": [
                {
                    "line": n,
                    "state": "connected" if n in busy else "idle",
                    "call": {"id": 1} if n in busy else None,
                }
                for n in (1, 2)
            ]
        }

    def close(self):
        pass


class FakeRauc:
    def __init__(self, refuse=None, version="2.0.0"):
        self.refuse = refuse
        self.marks = []
        self.installed = False
        self.version = version  # the bundle's, as `rauc info` reads it

    def info(self, path):
        assert os.path.exists(path)
        return {"version": self.version, "compatible": "linekeeper-rpi-lk-4l"}

    def status(self):
        slots = {
            "app.0": {"bootname": "A", "device": "/dev/a", "slot_status": {"bundle": {"version": "1.0.0"}}},
            "app.1": {
                "bootname": "B",
                "device": "/dev/b",
                "slot_status": {"bundle": {"version": self.version if self.installed else None}},
            },
        }
        return {"booted": "A", "boot_primary": "app.1" if self.installed else "app.0", "slots": slots}

    def install(self, path):
        assert os.path.exists(path)
        if self.refuse:
            raise UpdateError(self.refuse)
        self.installed = True

    def slot_name(self, bootname, status=None):
        return Rauc.slot_name(self, bootname, status)

    def operation(self):
        return "idle", ""

    def installer(self):
        return (*self.operation(), (100, "Installing done.", 1))

    def mark(self, how, name):
        self.marks.append((how, name))


class FakeSlots:
    def __init__(self):
        self.pointed = []

    def current(self):
        return "A"

    def mount(self, bootname, device):
        pass

    def point_at(self, bootname):
        self.pointed.append(bootname)


def _updater(tmp_path, rauc, busy, **settings):
    clock = FakeClock()
    s = UpdateSettings(data_dir=str(tmp_path), update_dir=str(tmp_path / "update"), poll_s=1.0, **settings)
    return Updater(
        s, rauc, FakeSlots(), FakeClient(clock, busy), None, monotonic=clock.monotonic, sleep=clock.sleep
    ), clock


def _bundle(tmp_path):
    path = tmp_path / "stick" / "b.raucb"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"bundle" * 100)
    return str(path)


def test_wait_idle_waits_for_the_call_to_end_and_the_lines_to_settle(tmp_path):
    updater, clock = _updater(tmp_path, FakeRauc(), lambda t: [1] if t < 30 else [], settle_s=2.0)
    assert updater.wait_idle() is True
    assert 32 <= clock.t <= 33


def test_wait_idle_gives_up_after_the_policy_s_longest_wait(tmp_path):
    updater, clock = _updater(tmp_path, FakeRauc(), lambda t: [2], max_wait_idle_s=600)
    assert updater.wait_idle() is False
    assert 600 <= clock.t <= 601


def test_wait_idle_goes_ahead_when_no_recorder_answers(tmp_path):
    updater, clock = _updater(tmp_path, FakeRauc(), lambda t: None, recorder_gone_s=30)
    assert updater.wait_idle() is True
    assert 30 <= clock.t <= 31


def test_a_line_busy_too_long_leaves_the_box_on_its_slot(tmp_path):
    rauc = FakeRauc()
    updater, _ = _updater(tmp_path, rauc, lambda t: [1], max_wait_idle_s=60)
    bundle = _bundle(tmp_path)
    result = updater.run(bundle, report_dir=str(tmp_path / "stick"))
    assert result.outcome == "not_switched"
    assert result.later and not result.retry  # "run the update again later": taken again later
    assert rauc.marks == [("active", "app.0")]
    assert updater.slots.pointed == []
    report = (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()
    assert "UPDATE NOT SWITCHED" in report and "run the update again later" in report
    assert not os.path.exists(tmp_path / "update" / "incoming.raucb")


def test_a_refusal_reports_the_install_check_s_reason(tmp_path):
    rauc = FakeRauc(refuse="rauc install failed: Pre-install handler error")
    updater, _ = _updater(tmp_path, rauc, lambda t: [])
    os.makedirs(tmp_path / "update")
    real_install = rauc.install

    def install(path):
        (tmp_path / "update" / "install-check.txt").write_text("security version 1 is below 3\n")
        real_install(path)

    rauc.install = install
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "refused"
    assert result.message == (
        "the box refused the bundle: security version 1 is below 3; the box was not changed: it runs slot A "
        "as before"
    )
    assert rauc.marks == [] and updater.slots.pointed == []
    assert not os.path.exists(tmp_path / "update" / "install-check.txt")


def test_a_bundle_that_cannot_be_read_is_reported(tmp_path):
    updater, _ = _updater(tmp_path, FakeRauc(), lambda t: [])
    os.makedirs(tmp_path / "update")
    result = updater.run(str(tmp_path / "gone.raucb"))
    assert result.outcome == "refused"
    assert "gone.raucb" in result.message and "nothing was changed" in result.message
    assert sorted(os.listdir(tmp_path / "update")) == ["last-report.txt", "last-result.json", "update.lock"]


def test_a_bundle_that_shrinks_during_the_copy_is_refused_as_a_pulled_stick(tmp_path):
    clock = FakeClock()
    bundle = tmp_path / "stick" / "b.raucb"
    bundle.parent.mkdir()
    bundle.write_bytes(os.urandom(3 * COPY_CHUNK))
    rauc = FakeRauc()

    def pull(copied, total):
        os.truncate(bundle, copied)  # what is left of the file once the stick is gone

    s = UpdateSettings(data_dir=str(tmp_path), update_dir=str(tmp_path / "update"))
    updater = Updater(s, rauc, FakeSlots(), FakeClient(clock, lambda t: []), None, on_copy=pull)
    result = updater.run(str(bundle), report_dir=str(bundle.parent))
    assert result.outcome == "refused"
    assert "was the stick pulled?" in result.message
    assert "(262144 of 786432 bytes)" in result.message
    assert result.retry and not result.later  # the stick put back installs it at once
    assert rauc.installed is False
    assert sorted(os.listdir(tmp_path / "update")) == ["last-report.txt", "last-result.json", "update.lock"]
    assert "UPDATE REFUSED" in (bundle.parent / "linekeeper-update-report.txt").read_text()


def test_a_copy_that_fills_the_box_s_storage_is_refused_and_leaves_nothing(tmp_path):
    updater, _ = _updater(tmp_path, FakeRauc(), lambda t: [])
    os.makedirs(tmp_path / "update")
    # Every write to /dev/full fails with ENOSPC, as a full card does.
    os.symlink("/dev/full", tmp_path / "update" / "incoming.raucb.part")
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "refused"
    assert "writing the bundle to the box's storage failed (No space left on device)" in result.message
    assert result.later  # not the bundle's fault: taken again later
    assert sorted(os.listdir(tmp_path / "update")) == ["last-report.txt", "last-result.json", "update.lock"]


@pytest.mark.parametrize(
    "make,said",
    [
        (lambda p: os.symlink("/dev/zero", p), "is a link, not a file"),
        (lambda p: os.mkfifo(p), "is not a file"),
        (lambda p: os.mkdir(p), "is not a file"),
    ],
)
def test_only_a_file_is_taken_from_a_stick(tmp_path, make, said):
    """A link to /dev/zero named *.raucb was copied until the data partition was full."""
    updater, _ = _updater(tmp_path, FakeRauc(), lambda t: [])
    os.makedirs(tmp_path / "update")
    (tmp_path / "stick").mkdir()
    bundle = tmp_path / "stick" / "b.raucb"
    make(bundle)
    result = updater.run(str(bundle), report_dir=str(tmp_path / "stick"))
    assert result.outcome == "refused" and said in result.message and not (result.retry or result.later)
    assert sorted(os.listdir(tmp_path / "update")) == ["last-report.txt", "last-result.json", "update.lock"]


def test_a_bundle_that_grows_during_the_copy_is_not_followed(tmp_path):
    bundle = tmp_path / "stick" / "b.raucb"
    bundle.parent.mkdir()
    bundle.write_bytes(os.urandom(2 * COPY_CHUNK))
    grown = []

    def grow(copied, total):
        with open(bundle, "ab") as f:
            f.write(os.urandom(COPY_CHUNK))
        grown.append(copied)

    s = UpdateSettings(data_dir=str(tmp_path), update_dir=str(tmp_path / "update"))
    updater = Updater(s, FakeRauc(), FakeSlots(), FakeClient(FakeClock(), lambda t: []), None, on_copy=grow)
    result = updater.run(str(bundle))
    assert result.outcome == "refused" and "the bundle changed while it was copied" in result.message
    assert len(grown) <= 3  # stopped one chunk past the size it had when opened


def test_a_full_card_under_the_update_is_an_outcome_not_a_crash(tmp_path, monkeypatch):
    """The progress note could not be written (the data partition full): the update
    crashed with no report, no outcome for the recorder, and the LEDs on "running"."""
    from firmware.update import flow

    told = []

    class Client(FakeClient):
        def call(self, op, **kw):
            told.append((op, kw.get("state")))
            return super().call(op, **kw)

    real = flow.atomic_write

    def full(path, data, **kw):
        if path.endswith(flow.PROGRESS_NAME) or path.endswith("last-report.txt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, **kw)

    monkeypatch.setattr(flow, "atomic_write", full)
    rauc = FakeRauc()
    s = UpdateSettings(data_dir=str(tmp_path), update_dir=str(tmp_path / "update"))
    updater = Updater(s, rauc, FakeSlots(), Client(FakeClock(), lambda t: []), None)
    bundle = _bundle(tmp_path)
    result = updater.run(bundle, report_dir=str(tmp_path / "stick"))
    assert (result.outcome, result.later) == ("refused", True)
    assert "the box's storage failed (No space left on device); nothing was changed" in result.message
    assert rauc.installed is False
    assert told[0] == ("update_state", "running") and told[-1] == ("update_state", "refused")
    assert "UPDATE REFUSED" in (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()


def test_a_second_update_while_one_runs_is_refused_and_changes_nothing(tmp_path):
    rauc = FakeRauc()
    updater, _ = _updater(tmp_path, rauc, lambda t: [])
    os.makedirs(tmp_path / "update")
    holder = os.open(tmp_path / "update" / "update.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # the first update (a USB stick) holds it
    try:
        result = updater.run(_bundle(tmp_path), report_dir=str(tmp_path / "stick"))
    finally:
        os.close(holder)
    assert result.outcome == "refused" and "another update is running" in result.message
    assert result.later  # "try again when it has finished": taken again later
    assert rauc.installed is False
    assert "UPDATE REFUSED" in (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()
    assert sorted(os.listdir(tmp_path / "update")) == ["update.lock"]  # its report is not the last


def test_rauc_s_reason_is_its_error_line_not_its_progress():
    out = (
        "installing\n 0% Installing\nLastError: signature verification failed: x\n"
        "Installing `/b.raucb` failed\nidle\n"
    )
    assert _reason(out) == "Installing `/b.raucb` failed"
    assert _reason("rauc-Message: hello\nidle\n") == "idle"


def test_the_report_names_outcome_versions_and_steps(tmp_path):
    from firmware.update.flow import UpdateResult

    result = UpdateResult(
        "rolled_back",
        "b.raucb",
        "it failed",
        version="2.0.0",
        previous_version="1.0.0",
        slot="B",
        steps=["copy", "install"],
    )
    text = format_report(result, 1_772_442_000_000_000)
    assert "UPDATE FAILED - the box went back to its old version" in text
    assert "2026-03-02 09:00:00 UTC" in text and "1.0.0" in text and "copy, install" in text


# -- the install-check handler, run as RAUC runs it ---------------------------------


HOST_ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
OTHER_ARCH = "amd64" if HOST_ARCH == "arm64" else "arm64"


def _check(
    tmp_path,
    *,
    bundle_security=1,
    installed=None,
    image_bytes=1000,
    slot_bytes=4096,
    arch=HOST_ARCH,
    meta_arch=None,
    version="1.0.0",
    running="0.9.0",
    rauc_status=None,
    confirmed=None,
    updating=True,
    with_stderr=False,
):
    """Run the install-check as RAUC runs it: the bundle ``version`` (RAUC_MF_VERSION, and
    in its manifest), the running release in the running slot's note (``running``) and,
    for a slot RAUC wrote, in RAUC's status of it (``rauc_status``); ``confirmed``: the
    note `linekeeper update` leaves for a confirmed install, ``updating``: while it runs."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    meta = "\n[meta.linekeeper]\narch=%s\n" % meta_arch if meta_arch else ""
    (bundle / "manifest.raucm").write_text(
        "[update]\ncompatible=x\nversion=%s\n\n[image.app]\nfilename=app.ext4\nsha256=%s\nsize=%d\n%s"
        % (version, IMAGE_SHA256, image_bytes, meta)
    )
    note = {"version": "1.0.0", "security_version": bundle_security}
    if arch is not None:
        note["arch"] = arch
    (bundle / "linekeeper-bundle.json").write_text(json.dumps(note))
    (bundle / "app.ext4").write_bytes(b"\0" * image_bytes)
    (tmp_path / "slot-b").write_bytes(b"\0" * slot_bytes)
    update = tmp_path / "update"
    update.mkdir()
    if installed is not None:
        (update / "security-version").write_text("%d\n" % installed)
    current = tmp_path / "current"
    current.mkdir()
    if running is not None:
        (current / "linekeeper-slot.json").write_text(json.dumps({"version": running}))
    if rauc_status is not None:  # RAUC's data directory is the update folder (system.conf)
        (update / "central.raucs").write_text(
            "[slot.app.0]\nbundle.compatible=x\nbundle.version=%s\nstatus=ok\n"
            "installed.timestamp=2026-03-02T09:00:00Z\n\n[slot.app.1]\nbundle.version=0.1.0\n" % rauc_status
        )
    if confirmed is not None:
        (update / "confirmed-install.json").write_text(json.dumps(confirmed))
    env = {
        "RAUC_BUNDLE_MOUNT_POINT": str(bundle),
        "RAUC_MF_COMPATIBLE": "x",
        "RAUC_MF_VERSION": version,
        "RAUC_CURRENT_BOOTNAME": "A",
        "RAUC_SLOTS": "1 2",
        "RAUC_SLOT_NAME_1": "app.0",
        "RAUC_SLOT_BOOTNAME_1": "A",
        "RAUC_SLOT_STATE_1": "booted",
        "RAUC_SLOT_NAME_2": "app.1",
        "RAUC_SLOT_BOOTNAME_2": "B",
        "RAUC_SLOT_STATE_2": "inactive",
        "LINEKEEPER_UPDATE_DIR": str(update),
        "LINEKEEPER_CURRENT": str(current),
        "RAUC_TARGET_SLOTS": "2",
        "RAUC_SLOT_CLASS_2": "app",
        "RAUC_SLOT_DEVICE_2": str(tmp_path / "slot-b"),
        "RAUC_IMAGE_NAME_1": "app.ext4",
        "RAUC_IMAGE_CLASS_1": "app",
        "PATH": os.environ["PATH"],
    }
    # `linekeeper update` holds its lock while its note stands (a cut one's note stays unheld).
    lock = _try_lock(str(update / LOCK_NAME)) if confirmed is not None and updating else None
    try:
        done = subprocess.run([sys.executable, INSTALL_CHECK], env=env, capture_output=True, text=True)
    finally:
        if lock is not None:
            os.close(lock)
    why = update / "install-check.txt"
    why = why.read_text().strip() if why.exists() else None
    return (done.returncode, why, done.stderr) if with_stderr else (done.returncode, why)


IMAGE_SHA256 = "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4"
CONFIRMED = {"bundle": "b.raucb", "sha256": "ab" * 32, "images": {"app.ext4": IMAGE_SHA256}}


@pytest.mark.parametrize("bundle_security, installed", [(1, None), (3, 3), (4, 3)])
def test_install_check_accepts_the_same_or_a_newer_security_version(tmp_path, bundle_security, installed):
    assert _check(tmp_path, bundle_security=bundle_security, installed=installed) == (0, None)


def test_install_check_refuses_a_security_downgrade(tmp_path):
    code, why = _check(tmp_path, bundle_security=2, installed=3)
    assert code == 1
    assert why == (
        "the bundle's security version 2 is below the installed 3 (a downgrade past a security fix)"
    )


def test_install_check_refuses_an_image_larger_than_its_slot(tmp_path):
    code, why = _check(tmp_path, bundle_security=1, image_bytes=5000, slot_bytes=4096)
    assert code == 1
    assert "app.ext4 is 5000 bytes, larger than the slot" in why


def test_install_check_refuses_a_bundle_for_another_cpu(tmp_path):
    code, why = _check(tmp_path, arch=OTHER_ARCH)
    assert code == 1
    assert why.startswith(
        "the bundle is built for %s CPUs and this box is %s: its firmware would not run. "
        "Build the bundle on a %s machine" % (OTHER_ARCH, HOST_ARCH, HOST_ARCH)
    )


def test_install_check_refuses_a_bundle_that_does_not_say_its_cpu(tmp_path):
    code, why = _check(tmp_path, arch=None)
    assert code == 1
    assert why.startswith("the bundle does not say which CPU architecture it was built for")


def test_install_check_reads_the_cpu_from_the_manifest_where_rauc_keeps_it(tmp_path):
    code, why = _check(tmp_path, arch=HOST_ARCH, meta_arch=OTHER_ARCH)
    assert code == 1 and why.startswith("the bundle is built for %s CPUs" % OTHER_ARCH)


@pytest.mark.parametrize("version", ["1.4.1", "1.4.0+hotfix1", "2.0.0~rc1"])
def test_install_check_accepts_a_newer_release(tmp_path, version):
    assert _check(tmp_path, version=version, running="1.4.0") == (0, None)


@pytest.mark.parametrize(
    "version, running, said",
    [
        (
            "1.2.0",
            "1.4.0",
            "the bundle holds release 1.2.0, older than the running release (1.4.0 \u2192 1.2.0)",
        ),
        (
            "1.4.0-rc.1",
            "1.4.0",
            "the bundle holds release 1.4.0-rc.1, older than the running release (1.4.0 \u2192 1.4.0-rc.1)",
        ),
        ("1.4.0", "1.4.0", "the bundle holds release 1.4.0, the one running now (a reinstall)"),
        ("1.4.0~RC1", "1.4.0~rc1", "the bundle holds release 1.4.0~RC1, the one running now (a reinstall)"),
        (
            "1.4.0",
            None,
            "the bundle holds release 1.4.0, and the running release's version (None) cannot be read",
        ),
    ],
)
def test_install_check_refuses_a_release_that_is_not_newer_and_says_how_to_confirm(
    tmp_path, version, running, said
):
    # What `rauc install old.raucb` run by hand meets: before, only `linekeeper update` asked.
    code, why, stderr = _check(tmp_path, version=version, running=running, with_stderr=True)
    assert code == 1
    assert why == (
        "%s. It is not installed without a confirmation: upload the bundle on the Updates page "
        "and confirm there (`rauc install` run by hand never goes back by itself)" % said
    )
    assert "linekeeper install-check: refused: %s" % why in stderr  # RAUC's hook error


def test_install_check_reads_the_running_release_from_rauc_s_status_of_the_booted_slot(tmp_path):
    # The slot note says 0.9.0, but RAUC installed 1.4.0 there since: that is what runs.
    code, why = _check(tmp_path, version="1.2.0", running="0.9.0", rauc_status="1.4.0")
    assert code == 1 and "(1.4.0 \u2192 1.2.0)" in why


def test_install_check_refuses_a_version_that_is_no_release_version(tmp_path):
    code, why = _check(tmp_path, version="latest")
    assert code == 1 and why.startswith(
        "the bundle's version cannot be compared with the running one: 'latest' is not a release "
        "version like 1.4.0"
    )


def test_install_check_lets_through_the_older_release_linekeeper_update_installs_as_confirmed(tmp_path):
    note = dict(CONFIRMED, **{"from": "1.4.0", "to": "1.2.0"})
    assert _check(tmp_path, version="1.2.0", running="1.4.0", confirmed=note) == (0, None)


def test_install_check_takes_no_confirmation_no_running_update_left(tmp_path):
    # The note of a `linekeeper update` killed during its `rauc install` (or a power cut):
    # a `rauc install` of the same bundle by hand afterwards is refused, and the note goes.
    note = dict(CONFIRMED, **{"from": "1.4.0", "to": "1.2.0"})
    code, why = _check(tmp_path, version="1.2.0", running="1.4.0", confirmed=note, updating=False)
    assert code == 1 and "older than the running release" in why
    assert not (tmp_path / "update" / "confirmed-install.json").exists()


@pytest.mark.parametrize(
    "change",
    [
        {"to": "1.1.0"},  # another release
        {"from": "1.3.0"},  # while another release ran
        {"images": {"app.ext4": "0" * 64}},  # another bundle of that release
        {"images": {}},
    ],
)
def test_install_check_takes_a_confirmation_only_for_this_very_bundle(tmp_path, change):
    note = dict(dict(CONFIRMED, **{"from": "1.4.0", "to": "1.2.0"}), **change)
    code, why = _check(tmp_path, version="1.2.0", running="1.4.0", confirmed=note)
    assert code == 1 and "older than the running release" in why


def test_an_update_refused_for_another_cpu_is_reported_and_not_tried_again(tmp_path):
    updater, _ = _updater(
        tmp_path, FakeRauc(refuse="rauc install failed: Pre-install handler error"), lambda t: []
    )
    os.makedirs(tmp_path / "update")
    real_install = updater.rauc.install

    def install(path):
        env = {
            "RAUC_BUNDLE_MOUNT_POINT": str(tmp_path / "bundle"),
            "LINEKEEPER_UPDATE_DIR": str(tmp_path / "update"),
            "PATH": os.environ["PATH"],
        }
        subprocess.run([sys.executable, INSTALL_CHECK], env=env, capture_output=True)
        real_install(path)

    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "linekeeper-bundle.json").write_text(
        json.dumps({"security_version": 1, "arch": OTHER_ARCH})
    )
    updater.rauc.install = install
    result = updater.run(_bundle(tmp_path), report_dir=str(tmp_path / "stick"))
    assert result.outcome == "refused" and not result.retry and not result.later
    assert result.message.startswith(
        "the box refused the bundle: the bundle is built for %s CPUs" % OTHER_ARCH
    )
    assert "UPDATE REFUSED" in (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()


def _squashfs_start(bytes_used):
    """The first 48 bytes of a squashfs image whose superblock says ``bytes_used``."""
    return b"hsqs" + bytes(36) + bytes_used.to_bytes(8, "little")


def test_a_bundle_with_no_signature_is_unsigned_when_whole_and_incomplete_when_cut(tmp_path):
    from firmware.update.flow import _explain

    refusal = "LastError: Invalid bundle format: Signature size is 0"
    whole = tmp_path / "whole.raucb"  # the whole image, nothing after it: never signed
    whole.write_bytes(_squashfs_start(8192) + bytes(8192 - 48))
    cut = tmp_path / "cut.raucb"  # the image cut off part way (the cut ends in zeros)
    cut.write_bytes(_squashfs_start(8192) + bytes(4096 - 48))
    assert _explain(Exception(refusal), str(whole)).startswith("the bundle is not signed (")
    assert _explain(Exception(refusal), str(cut)).startswith(
        "the bundle is damaged or incomplete (truncated?)"
    )
    not_squashfs = tmp_path / "junk.raucb"
    not_squashfs.write_bytes(bytes(100))
    assert _explain(Exception(refusal), str(not_squashfs)).startswith("the bundle is not signed (")


class _Cut(BaseException):
    """Stands for a power cut: nothing after it runs, nothing catches it."""


def test_an_outcome_cut_short_after_its_progress_note_went_is_audited(tmp_path, monkeypatch):
    """The updater removed its progress note, wrote its reports, then audited the outcome:
    a cut after the note went left an update nobody's trail showed, and --recover had
    nothing left to finish. The entry now comes first."""
    from firmware.storage.audit import AuditLog
    from firmware.update import flow

    audit = AuditLog(str(tmp_path / "audit.db"), str(tmp_path / "audit.head"))
    clock = FakeClock()
    s = UpdateSettings(
        data_dir=str(tmp_path), update_dir=str(tmp_path / "update"), poll_s=1.0, max_wait_idle_s=60
    )
    updater = Updater(
        s,
        FakeRauc(),
        FakeSlots(),
        FakeClient(clock, lambda t: [1]),
        audit,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )

    def cut(*args, **kwargs):
        raise _Cut()

    monkeypatch.setattr(flow, "format_report", cut)  # after the note went, before the reports
    with pytest.raises(_Cut):
        updater.run(_bundle(tmp_path))
    (entry,) = audit.entries(action="update")
    assert entry.details["outcome"] == "not_switched" and entry.target == "b.raucb"
    monkeypatch.undo()
    assert updater.recover() is None  # nothing left to finish: the entry is the record
    audit.close()


def test_an_update_stopped_during_the_copy_changes_nothing_and_may_come_again(tmp_path):
    """The stick's unit stopped (the stick pulled) during the copy: refused, nothing
    installed, the half copy gone, and the bundle marked to be taken again."""
    rauc = FakeRauc()
    updater, _ = _updater(tmp_path, rauc, lambda t: [])
    updater.stopped = lambda: True
    result = updater.run(_bundle(tmp_path))
    assert (result.outcome, result.retry) == ("refused", True)
    assert "stopped while the bundle was copied" in result.message and "nothing was changed" in result.message
    assert not rauc.installed and rauc.marks == []
    assert sorted(os.listdir(tmp_path / "update")) == ["last-report.txt", "last-result.json", "update.lock"]


def test_a_switch_that_fails_rolls_back_like_a_failed_health_check(tmp_path):
    """The new slot could not be mounted: the update ended 'failed' with RAUC still
    booting the new, unchecked slot at the next restart. It now rolls back."""
    rauc = FakeRauc()
    updater, _ = _updater(tmp_path, rauc, lambda t: [])

    def mount(bootname, device):
        if bootname == "B":
            raise UpdateError("cannot mount slot B (%s)" % device)

    updater.slots.mount = mount
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "rolled_back", result.message
    assert "the switch to slot B failed: cannot mount slot B" in result.message
    assert rauc.marks == [("bad", "app.1"), ("active", "app.0")]
    assert updater.slots.pointed == ["A"]


def test_an_update_folder_the_box_cannot_make_is_refused_with_its_report_on_the_stick(tmp_path):
    """Its folder (or lock) refused before the update began: a crash with no report."""
    (tmp_path / "card").write_text("a file where the folder would be")
    rauc = FakeRauc()
    s = UpdateSettings(data_dir=str(tmp_path), update_dir=str(tmp_path / "card" / "update"))
    updater = Updater(s, rauc, FakeSlots(), FakeClient(FakeClock(), lambda t: []), None)
    result = updater.run(_bundle(tmp_path), report_dir=str(tmp_path / "stick"))
    assert (result.outcome, result.later) == ("refused", True) and rauc.installed is False
    assert "the box's storage failed (Not a directory: %s)" % s.update_dir in result.message
    assert "nothing was changed" in result.message
    report = (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()
    assert "UPDATE REFUSED" in report and "Not a directory" in report
