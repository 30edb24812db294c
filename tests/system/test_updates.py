"""Field updates with real RAUC (issue 15): signed bundles into A/B loop-device slots,
switched when every line is idle, health-checked, rolled back when unhealthy.

Each box runs a private system D-Bus, ``rauc service`` and the firmware from its
active slot (tests/system/raucbox.py). Needs root, like the appliance tests.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from firmware.control import ControlClient, RecorderUnavailable, socket_path
from firmware.migrations import release_schema
from firmware.update.flow import COPY_CHUNK, Updater, UpdateSettings
from firmware.update.inbox import UpdateInbox
from firmware.update.rauc import Rauc
from firmware.update.slots import Slots
from tests.system.raucbox import ROOT, RaucBox, copy_checkout, make_bundle

from support.ports import free_ports

STICK = os.path.join(ROOT, "scripts", "system", "rauc", "stick")

pytestmark = pytest.mark.slow


def _web_port():
    """The web UI's HTTP port (and HTTPS on the next) of a new box: two found free, or
    LINEKEEPER_TEST_PORT's."""
    fixed = os.environ.get("LINEKEEPER_TEST_PORT")
    return int(fixed) if fixed else free_ports((0, 1))


QUIET = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 2, "calls": []}
# A call on line 1 from 1 s to about 16 s of the run (two rings, then 12 s of talk).
CALL = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 2,
    "calls": [
        {
            "line": 1,
            "at": 1.0,
            "direction": "in",
            "rings": 2,
            "talk": 12.0,
            "caller_id": {"number": "01632960123"},
        }
    ],
}


def _scenario(tmp_path, content):
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(content))
    return str(path)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    assert os.geteuid() == 0, "the update tests need root (loop devices, mounts)"
    for tool in ("rauc", "dbus-daemon", "mkfs.ext4", "losetup", "mksquashfs"):
        assert shutil.which(tool), "%s is missing: run scripts/install-deps" % tool
    out = tmp_path_factory.mktemp("bundles")
    return {
        "v1": make_bundle(str(out / "v1.raucb"), "1.0.0", security=1),
        "v2": make_bundle(str(out / "v2.raucb"), "2.0.0", security=2),
        "dir": out,
    }


def _box(tmp_path, bundles, scenario, **kw):
    box = RaucBox(str(tmp_path / "box"), _scenario(tmp_path, scenario), _web_port(), **kw)
    try:
        box.start(bundles["v1"])
        _snapshot_when_up(box, 60)  # the recorder is up: it is told of each update
    except BaseException:
        box.close()
        raise
    return box


@pytest.fixture
def quiet_box(tmp_path, bundles):
    box = _box(tmp_path, bundles, QUIET)
    yield box
    box.close()


def _report(bundle):
    with open(os.path.join(os.path.dirname(bundle), "linekeeper-update-report.txt")) as f:
        return f.read()


def _slot(box, bootname):
    for entry in box.status()["slots"]:
        for slot in entry.values():
            if slot["bootname"] == bootname:
                return slot
    raise AssertionError(bootname)


def test_a_good_bundle_installs_switches_and_is_marked_good(quiet_box, bundles, tmp_path):
    stick = tmp_path / "stick"
    stick.mkdir()
    bundle = shutil.copy(bundles["v2"], stick / "v2.raucb")
    old_recorder = quiet_box.pid("recorder")
    assert quiet_box.running_from() == "A"

    done = quiet_box.update(str(bundle), "--health-timeout-s", "60")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "update installed" in done.stdout
    assert quiet_box.running_from() == "B"
    assert quiet_box.pid("recorder") != old_recorder
    slot_b = _slot(quiet_box, "B")
    assert slot_b["boot_status"] == "good"
    assert slot_b["slot_status"]["bundle"]["version"] == "2.0.0"
    assert quiet_box.status()["booted"] == "B"  # rauc service restarted on the new slot
    assert "primary=B" in quiet_box.bootstate()
    with open(os.path.join(quiet_box.update_dir, "security-version")) as f:
        assert f.read().strip() == "2"
    report = _report(str(bundle))
    assert "UPDATE INSTALLED" in report and "2.0.0" in report
    assert not os.path.exists(os.path.join(quiet_box.update_dir, "incoming.raucb"))
    db = sqlite3.connect(os.path.join(quiet_box.data_dir, "audit.db"))
    (details,) = db.execute("SELECT details FROM audit WHERE action = 'update'").fetchone()
    db.close()
    assert json.loads(details)["outcome"] == "installed"
    verify = quiet_box.run_cli("verify", "--data-dir", quiet_box.data_dir)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_bundle_dropped_into_the_watched_folder_is_installed_once(quiet_box, bundles, tmp_path):
    stick = tmp_path / "stick"
    stick.mkdir()
    shutil.copy(bundles["v2"], stick / "v2.raucb")

    done = quiet_box.update(None, "--watch", str(stick), "--once", "--health-timeout-s", "60")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "v2.raucb: installed" in done.stdout
    assert quiet_box.running_from() == "B"
    assert "UPDATE INSTALLED" in (stick / "linekeeper-update-report.txt").read_text()
    again = quiet_box.update(None, "--watch", str(stick), "--once")
    assert again.returncode == 0 and again.stdout == ""
    assert quiet_box.running_from() == "B"


def test_a_usb_stick_is_mounted_updated_from_reported_on_and_unmounted(quiet_box, bundles, tmp_path):
    # The stick: an ext4 image on a loop device holding the bundle, as udev hands
    # linekeeper-stick@loopN.service a USB disk's partition.
    image = str(tmp_path / "stick.img")
    with open(image, "wb") as f:
        f.truncate(8 << 20)
    files = tmp_path / "stick-files"
    files.mkdir()
    shutil.copy(bundles["v2"], files / "linekeeper-2.0.0.raucb")
    subprocess.run(["mkfs.ext4", "-q", "-d", str(files), image], check=True)
    device = subprocess.run(["losetup", "-f", "--show", image], capture_output=True, text=True, check=True)
    device = device.stdout.strip()
    mounts = tmp_path / "sticks"
    os.makedirs(os.path.join(quiet_box.data_dir, "update-inbox"), exist_ok=True)  # as tmpfiles makes it
    try:
        extra = quiet_box.update_args() + ["--health-timeout-s", "60"]
        done = subprocess.run(
            [STICK, device],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
            env=dict(
                quiet_box.env,
                LINEKEEPER_COMMAND=os.path.join(os.path.dirname(sys.executable), "linekeeper"),
                LINEKEEPER_DATA_DIR=quiet_box.data_dir,
                LINEKEEPER_STICK_MOUNTS=str(mounts),
                LINEKEEPER_UPDATE_ARGS=" ".join(extra),
            ),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "linekeeper-2.0.0.raucb: installed" in done.stdout
        assert quiet_box.running_from() == "B"
        assert not os.path.ismount(mounts / os.path.basename(device))  # unmounted again
        report = subprocess.run(
            ["debugfs", "-R", "cat /linekeeper-update-report.txt", device],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "UPDATE INSTALLED" in report and "2.0.0" in report
        # The installer's page shows the stick's update as it shows an upload's.
        page = UpdateInbox(quiet_box.data_dir).state()
        assert page["last"]["bundle"] == "linekeeper-2.0.0.raucb" and page["last"]["outcome"] == "installed"
        assert "UPDATE INSTALLED" in page["report"]
    finally:
        subprocess.run(["losetup", "-d", device], capture_output=True)


def test_a_bundle_uploaded_on_the_page_is_installed_and_the_page_shows_it(quiet_box, bundles):
    # What the web UI does with an upload, then what linekeeper-update-inbox.service runs.
    inbox = UpdateInbox(quiet_box.data_dir, slot_info=os.path.join(quiet_box.current, "linekeeper-slot.json"))
    assert inbox.state()["installed_version"] == "1.0.0"
    with open(bundles["v2"], "rb") as f:
        kept = inbox.save(f, "linekeeper-2.0.0.raucb")
    assert inbox.state()["waiting"] == kept["name"]

    done = quiet_box.update(
        None, "--watch", inbox.dir, "--once", "--status-dir", inbox.dir, "--health-timeout-s", "60"
    )

    assert done.returncode == 0, done.stdout + done.stderr
    state = inbox.state()
    assert state["installed_version"] == "2.0.0"
    assert state["last"]["outcome"] == "installed" and state["last"]["previous_version"] == "1.0.0"
    assert state["progress"] is None and state["waiting"] is None
    assert "UPDATE INSTALLED" in state["report"]


# -- refused bundles: a clear report, and nothing changed ----------------------------


def _flip_byte(src, dst):
    data = bytearray(open(src, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(dst, "wb").write(bytes(data))


def _truncate(src, dst):
    # A copy cut off part way, as a pulled stick or a broken download leaves it.
    data = open(src, "rb").read()
    open(dst, "wb").write(data[: len(data) * 2 // 3])


def _unsigned(src, dst):
    # A plain bundle is its squashfs, the CMS signature, and the signature's length
    # (8 bytes, big-endian): what is left without the last two is never signed.
    data = open(src, "rb").read()
    sig_len = int.from_bytes(data[-8:], "big")
    open(dst, "wb").write(data[: len(data) - 8 - sig_len])


def _too_large(out, tmp_path):
    source = copy_checkout(str(tmp_path / "big-src"))
    with open(os.path.join(source, "firmware", "ballast.bin"), "wb") as f:
        f.write(os.urandom(30 << 20))  # incompressible: the image outgrows the slot
    return make_bundle(out, "2.0.0", source=source, security=2)


def _other_cpu(out, tmp_path):
    """A bundle made on a machine of another CPU architecture (its dpkg says so)."""
    here = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    fake = tmp_path / "other-cpu"
    fake.mkdir()
    (fake / "dpkg").write_text("#!/bin/sh\necho %s\n" % ("amd64" if here == "arm64" else "arm64"))
    (fake / "dpkg").chmod(0o755)
    env = dict(os.environ, PATH="%s:%s" % (fake, os.environ["PATH"]))
    return make_bundle(out, "2.0.0", security=2, env=env)


REFUSALS = {
    "another cpu": (lambda out, b, t: _other_cpu(out, t), "CPUs and this box is"),
    "wrong key": (
        lambda out, b, t: make_bundle(out, "2.0.0", key="other", security=2),
        "not signed by a key this box trusts",
    ),
    "one byte changed": (
        lambda out, b, t: (_flip_byte(b["v2"], out), out)[1],
        "damaged or changed after it was signed",
    ),
    "truncated": (lambda out, b, t: (_truncate(b["v2"], out), out)[1], "damaged or incomplete"),
    "unsigned": (lambda out, b, t: (_unsigned(b["v2"], out), out)[1], "the bundle is not signed"),
    "wrong compatible": (
        lambda out, b, t: make_bundle(out, "2.0.0", security=2, compatible="linekeeper-rpi-lk-8l"),
        "for another board or HAT",
    ),
    "downgrade": (
        lambda out, b, t: make_bundle(out, "2.0.0", security=2),
        "security version 2 is below the installed 5",
    ),
    "too large": (lambda out, b, t: _too_large(out, t), "larger than the slot"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_bad_bundle_is_refused_with_a_report_and_nothing_changes(case, quiet_box, bundles, tmp_path):
    make, reason = REFUSALS[case]
    stick = tmp_path / "stick"
    stick.mkdir()
    bundle = make(str(stick / "update.raucb"), bundles, tmp_path)
    if case == "downgrade":
        with open(os.path.join(quiet_box.update_dir, "security-version"), "w") as f:
            f.write("5\n")
    before = _state(quiet_box)

    done = quiet_box.update(bundle)

    _assert_refused(quiet_box, done, bundle, reason, before)


def _state(box):
    return (box.bootstate(), box.slot_digest(1), box.pid("recorder"), os.readlink(box.current))


def _assert_refused(box, done, bundle, reason, before):
    """Refused with ``reason`` on the console, on the stick and in the page's last
    result, and the box as it was: same slots, same recorder, on slot A."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert "update refused" in done.stdout
    assert reason in done.stdout
    report = _report(bundle)
    assert "UPDATE REFUSED - the box runs its old version, unchanged" in report
    assert reason in report
    with open(os.path.join(box.update_dir, "last-result.json")) as f:
        last = json.load(f)
    assert last["outcome"] == "refused" and reason in last["message"]
    assert _state(box) == before
    assert box.running_from() == "A"
    assert _slot(box, "A")["boot_status"] == "good"
    assert box.status()["boot_primary"] == "app.0"
    leftovers = {"incoming.raucb", "incoming.raucb.part", "progress.json"} & set(os.listdir(box.update_dir))
    assert not leftovers
    _assert_alarm(box, reason)


def _assert_alarm(box, reason):
    """The running recorder was told: the alarm update_failed is in its history."""
    db = sqlite3.connect(os.path.join(box.data_dir, "alarms.db"))
    rows = db.execute("SELECT message FROM alarm_history WHERE kind = 'update_failed'").fetchall()
    db.close()
    assert len(rows) == 1 and reason in rows[0][0], rows


def test_a_bundle_the_box_has_no_room_for_is_refused_and_nothing_changes(tmp_path, bundles):
    # 12 MB for the update folder: the 0.6 MB bundle and the 16 MB margin do not fit.
    box = _box(tmp_path, bundles, QUIET, update_fs_mb=12)
    try:
        stick = tmp_path / "stick"
        stick.mkdir()
        bundle = shutil.copy(bundles["v2"], stick / "v2.raucb")
        before = _state(box)

        done = box.update(str(bundle))

        _assert_refused(box, done, str(bundle), "the box's storage is too full to take the bundle", before)
    finally:
        box.close()


def test_a_stick_pulled_during_the_copy_is_refused_and_nothing_changes(quiet_box, bundles, tmp_path):
    stick = tmp_path / "stick"
    stick.mkdir()
    bundle = str(shutil.copy(bundles["v2"], stick / "v2.raucb"))
    assert os.path.getsize(bundle) > 2 * COPY_CHUNK
    before = _state(quiet_box)

    def pull(copied, total):
        # The stick goes after the first chunk: the rest of the file is no longer there.
        os.truncate(bundle, copied)

    settings = UpdateSettings(data_dir=quiet_box.data_dir, update_dir=quiet_box.update_dir)
    client = ControlClient(socket_path(quiet_box.data_dir))
    updater = Updater(
        settings,
        Rauc(env=quiet_box.env),
        Slots(quiet_box.slots_dir, quiet_box.current, quiet_box.update_dir),
        client,
        on_copy=pull,
    )
    try:
        result = updater.run(bundle, report_dir=str(stick))
    finally:
        client.close()

    assert result.outcome == "refused"
    assert "was the stick pulled?" in result.message
    assert "UPDATE REFUSED - the box runs its old version, unchanged" in _report(bundle)
    assert _state(quiet_box) == before
    assert quiet_box.running_from() == "A"
    assert quiet_box.status()["boot_primary"] == "app.0"
    assert not {"incoming.raucb", "incoming.raucb.part"} & set(os.listdir(quiet_box.update_dir))
    _assert_alarm(quiet_box, "was the stick pulled?")


# -- health check and rollback -------------------------------------------------------


def test_a_bundle_whose_firmware_fails_its_health_check_is_rolled_back(quiet_box, bundles, tmp_path):
    source = copy_checkout(str(tmp_path / "broken-src"))
    # A release whose recorder dies at start (a bug that slipped through).
    recorder = os.path.join(source, "firmware", "recording", "recorder.py")
    assert os.path.exists(recorder), "the recorder moved: break the module it is in now"
    with open(recorder, "a") as f:
        f.write("\nraise RuntimeError('a broken release')\n")
    bundle = make_bundle(str(tmp_path / "broken.raucb"), "2.0.1", source=source, security=2)

    done = quiet_box.update(bundle, "--health-timeout-s", "20")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "update rolled back" in done.stdout
    assert "the recorder does not answer" in done.stdout
    assert "NOT healthy" not in done.stdout
    assert quiet_box.running_from() == "A"
    assert _slot(quiet_box, "B")["boot_status"] == "bad"
    assert quiet_box.status()["boot_primary"] == "app.0"
    assert quiet_box.status()["booted"] == "A"
    assert "UPDATE FAILED - the box went back" in _report(bundle)
    _assert_alarm(quiet_box, "failed its health check")
    # The security version stays that of the release that runs.
    assert not os.path.exists(os.path.join(quiet_box.update_dir, "security-version"))


# -- data migrations -------------------------------------------------------------------

MIGRATION = """
import os
import sqlite3


def apply(data_dir):
    db = sqlite3.connect(os.path.join(data_dir, "calls.db"))
    db.execute("ALTER TABLE calls ADD COLUMN migrated_note TEXT")
    db.commit()
    db.close()
"""


# This release's data schema, and the test release's, one migration on.
SCHEMA = release_schema()
NOTE_SCHEMA = SCHEMA + 1


def _release_with_migration(tmp_path, name, broken_web=False):
    source = copy_checkout(str(tmp_path / name))
    # The test's migration is the one after this release's newest.
    with open(os.path.join(source, "firmware", "migrations", "m%03d_note.py" % NOTE_SCHEMA), "w") as f:
        f.write(MIGRATION)
    if broken_web:
        # Its web UI cannot start: the health check fails after the recorder migrated.
        with open(os.path.join(source, "web", "server.py"), "a") as f:
            f.write("\nraise RuntimeError('a broken web UI')\n")
    return make_bundle(str(tmp_path / (name + ".raucb")), "2.1.0", source=source, security=2)


def _calls_columns(box):
    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    cols = [row[1] for row in db.execute("PRAGMA table_info(calls)")]
    db.close()
    return cols


def test_a_release_with_a_data_migration_migrates_and_drops_its_backup_once_good(quiet_box, tmp_path):
    bundle = _release_with_migration(tmp_path, "migrating")

    done = quiet_box.update(bundle, "--health-timeout-s", "60")

    assert done.returncode == 0, done.stdout + done.stderr
    assert quiet_box.running_from() == "B"
    assert "migrated_note" in _calls_columns(quiet_box)
    with open(os.path.join(quiet_box.data_dir, "data-schema")) as f:
        assert f.read().strip() == str(NOTE_SCHEMA)
    assert not os.path.exists(os.path.join(quiet_box.data_dir, "migration-backup"))
    verify = quiet_box.run_cli("verify", "--data-dir", quiet_box.data_dir)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    with open_audit_ro(quiet_box) as entries:
        assert {"event": "migrated", "from": SCHEMA, "to": NOTE_SCHEMA} in entries


def test_a_rollback_after_a_data_migration_finds_the_data_as_it_left_it(quiet_box, tmp_path):
    before = _calls_columns(quiet_box)
    bundle = _release_with_migration(tmp_path, "migrating-broken", broken_web=True)

    done = quiet_box.update(bundle, "--health-timeout-s", "20")

    assert done.returncode == 1 and "update rolled back" in done.stdout, done.stdout + done.stderr
    assert quiet_box.running_from() == "A"
    assert _calls_columns(quiet_box) == before  # the old release's schema, restored
    with open(os.path.join(quiet_box.data_dir, "data-schema")) as f:
        assert f.read().strip() == str(SCHEMA)  # the old release's schema (a fresh box notes its own)
    assert not os.path.exists(os.path.join(quiet_box.data_dir, "migration-backup"))
    assert len(_snapshot_when_up(quiet_box)["lines"]) == 2  # recording again on slot A
    verify = quiet_box.run_cli("verify", "--data-dir", quiet_box.data_dir)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    with open_audit_ro(quiet_box) as entries:
        # The new release had migrated, and its entries stay (the trail goes on); the
        # old one put its data back and says from when.
        assert {"event": "migrated", "from": SCHEMA, "to": NOTE_SCHEMA} in entries
        restored = [e for e in entries if e.get("event") == "restored"]
        assert len(restored) == 1 and (restored[0]["from"], restored[0]["to"]) == (NOTE_SCHEMA, SCHEMA)
        assert restored[0]["backup_at_us"] > 0 and restored[0]["audit"] == "kept"
        assert restored[0]["audit_entries_since"] >= 1


class open_audit_ro:
    """The details of the box's ``update`` audit entries (read while the box runs)."""

    def __init__(self, box):
        self.box = box

    def __enter__(self):
        db = sqlite3.connect(os.path.join(self.box.data_dir, "audit.db"))
        rows = db.execute("SELECT details FROM audit WHERE action = 'update'").fetchall()
        db.close()
        return [json.loads(r[0]) for r in rows]

    def __exit__(self, *exc):
        return False


# -- never during a call ---------------------------------------------------------------


def test_an_update_started_during_a_call_switches_after_the_call_ends(tmp_path, bundles):
    box = _box(tmp_path, bundles, CALL)
    try:
        client = ControlClient(socket_path(box.data_dir))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                lines = client.call("snapshot")["lines"]
                if lines[0]["call"] is not None:
                    break
            except Exception:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("the simulated call never started")
        client.close()

        done = box.update(bundles["v2"], "--health-timeout-s", "60")

        assert done.returncode == 0, done.stdout + done.stderr
        assert box.running_from() == "B"
        # The update waited for the call (12 s of talk) to end on the old slot.
        result = json.load(open(os.path.join(box.update_dir, "last-result.json")))
        assert result["steps"].index("wait_idle") < result["steps"].index("switch")
        assert result["waited_idle_s"] >= 5.0
        db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
        first = db.execute("SELECT answered_at, ended_at, end_reason FROM calls WHERE id = 1").fetchone()
        db.close()
        answered_us, ended_us, end_reason = first
        assert end_reason == "local", "the call was hung up, not cut by a restart"
        assert ended_us - answered_us == 12_000_000
        with open(os.path.join(box.base, "recorder.log"), "rb") as f:
            log = f.read().decode(errors="replace")
        assert "Traceback" not in log
    finally:
        box.close()


# -- the kill matrix -------------------------------------------------------------------


def _snapshot_when_up(box, timeout_s=30):
    """The recorder's line status once it answers (it may have just booted)."""
    client = ControlClient(socket_path(box.data_dir))
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                return client.call("snapshot")
            except RecorderUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        client.close()


STEPS = ("copy", "install", "wait_idle", "switch", "restart", "health", "mark_good")


@pytest.mark.parametrize("step", STEPS)
def test_kill_9_and_a_power_cut_at_any_step_leave_a_box_recording_on_a_good_slot(step, quiet_box, bundles):
    done = quiet_box.update(
        bundles["v2"], "--health-timeout-s", "60", env={"LINEKEEPER_UPDATE_TEST_KILL_AT": step}
    )
    assert done.returncode == -9, done.stdout + done.stderr

    quiet_box.power_cut_and_boot()
    recovered = quiet_box.update(None, "--recover", "--health-timeout-s", "60")

    assert recovered.returncode == 0 if step == "mark_good" else 1, recovered.stdout
    kept = "B" if step == "mark_good" else "A"
    assert quiet_box.running_from() == kept
    status = quiet_box.status()
    assert status["boot_primary"] == ("app.1" if kept == "B" else "app.0")
    assert _slot(quiet_box, kept)["boot_status"] == "good"
    assert len(_snapshot_when_up(quiet_box)["lines"]) == 2  # recording, every line supervised
    verify = quiet_box.run_cli("verify", "--data-dir", quiet_box.data_dir)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert not os.path.exists(os.path.join(quiet_box.update_dir, "progress.json"))
