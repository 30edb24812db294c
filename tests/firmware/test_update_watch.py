"""The watched folder for USB sticks: each complete new bundle installed once."""

from firmware.update.watch import RETRY_LATER_S, Watcher


class Clock:
    t = 0.0

    def monotonic(self):
        return self.t


def _watcher(tmp_path, stable_s=2.0):
    installed = []
    clock = Clock()
    stick = tmp_path / "stick"
    stick.mkdir()
    (tmp_path / "update").mkdir()
    w = Watcher(
        str(stick),
        str(tmp_path / "update"),
        lambda path, report_dir: installed.append((path, report_dir)) or path,
        stable_s=stable_s,
        monotonic=clock.monotonic,
    )
    return w, stick, installed, clock


def test_a_bundle_is_installed_once_it_stops_changing_and_only_once(tmp_path):
    w, stick, installed, clock = _watcher(tmp_path)
    (stick / "notes.txt").write_text("not a bundle")
    (stick / "v2.raucb").write_bytes(b"x" * 10)
    assert w.poll() == []  # just seen: it may still be copying
    clock.t = 1.0
    (stick / "v2.raucb").write_bytes(b"x" * 20)
    assert w.poll() == []  # it changed: wait again
    clock.t = 2.5
    assert w.poll() == []
    clock.t = 3.5
    assert w.poll() == [str(stick / "v2.raucb")]
    assert installed == [(str(stick / "v2.raucb"), str(stick))]
    clock.t = 10.0
    assert w.poll() == []  # the stick left in: not again


def test_the_same_bundle_is_not_installed_again_by_a_new_watcher(tmp_path):
    w, stick, installed, _ = _watcher(tmp_path, stable_s=0)
    (stick / "v2.raucb").write_bytes(b"x")
    assert len(w.poll()) == 1
    again = Watcher(str(stick), str(tmp_path / "update"), lambda p, r: p, stable_s=0)
    assert again.poll() == []  # after a reboot, with the stick still in


def test_a_pulled_stick_is_no_error(tmp_path):
    w, stick, _, _ = _watcher(tmp_path)
    stick.rmdir()
    assert w.poll() == []


def test_a_bundle_whose_update_was_stopped_is_taken_again(tmp_path):
    """Stopped (its stick pulled), an update says so with ``retry``: the stick put back
    installs it; any other outcome is final."""
    import types

    stick = tmp_path / "stick"
    stick.mkdir()
    (tmp_path / "update").mkdir()
    (stick / "v2.raucb").write_bytes(b"x")
    outcomes = [types.SimpleNamespace(retry=True), types.SimpleNamespace(retry=False)]
    w = Watcher(str(stick), str(tmp_path / "update"), lambda p, r: outcomes.pop(0), stable_s=0)
    assert [r.retry for r in w.poll()] == [True]
    assert [r.retry for r in w.poll()] == [False]  # taken again
    assert w.poll() == []


def test_a_bundle_refused_for_a_cause_not_its_own_is_taken_again_later_not_at_every_poll(tmp_path):
    """A line busy for the whole wait, the storage full, another update running: retried at
    every poll with the stick left in, it was copied and installed again and again; a
    watcher started anew (the stick put back) takes it at once, as its report says."""
    import types

    stick = tmp_path / "stick"
    stick.mkdir()
    (tmp_path / "update").mkdir()
    (stick / "v2.raucb").write_bytes(b"x")
    now = [1000.0]
    taken = []

    def install(path, report_dir):
        taken.append(now[0])
        return types.SimpleNamespace(retry=False, later=len(taken) == 1)

    w = Watcher(str(stick), str(tmp_path / "update"), install, stable_s=0, monotonic=lambda: now[0])
    w.poll()
    for _ in range(5):
        now[0] += 60
        assert w.poll() == []  # not before its time, however often it looks
    again = Watcher(str(stick), str(tmp_path / "update"), install, stable_s=0, monotonic=lambda: now[0])
    again.poll()  # the stick put back: its unit starts a new watcher
    assert taken == [1000.0, 1300.0]
    now[0] += RETRY_LATER_S
    assert w.poll() == [] and again.poll() == []  # then installed: final


def test_a_bundle_named_in_upper_case_is_taken(tmp_path):
    """Some tools write a FAT stick's names in upper case: LINEKEEPER-1.4.0.RAUCB was not
    looked at, and the stick did nothing."""
    w, stick, installed, _ = _watcher(tmp_path, stable_s=0)
    (stick / "LINEKEEPER-1.4.0.RAUCB").write_bytes(b"x")
    assert w.poll() == [str(stick / "LINEKEEPER-1.4.0.RAUCB")]


def test_a_stick_with_its_bundle_in_a_folder_says_so_on_the_stick(tmp_path, capsys):
    """`update --watch STICK --once` with the bundle in a folder on the stick (or none at
    all) installed nothing, said nothing and exited 0: the technician saw a stick that
    did nothing. It now says where the bundle is and what to do, on the stick's report
    too, and exits 1; with no bundle at all it says so; a folder that is not there is an
    error, not "nothing to do"."""
    from firmware.cli import main
    from firmware.update.flow import REPORT_NAME

    stick = tmp_path / "stick"
    (stick / "updates").mkdir(parents=True)
    (stick / "updates" / "linekeeper-1.4.0.raucb").write_bytes(b"x")
    data = tmp_path / "data"
    data.mkdir()
    args = [
        "update",
        "--watch",
        str(stick),
        "--once",
        "--data-dir",
        str(data),
        "--update-dir",
        str(tmp_path / "u"),
    ]
    assert main(args) == 1
    said = capsys.readouterr().err
    assert "updates/linekeeper-1.4.0.raucb" in said and "top of the stick" in said
    report = (stick / REPORT_NAME).read_text()
    assert "nothing was installed" in report and "updates/linekeeper-1.4.0.raucb" in report
    (stick / REPORT_NAME).unlink()
    (stick / "updates" / "linekeeper-1.4.0.raucb").unlink()
    assert main(args) == 0  # (the upload folder's service runs at each change of it)
    assert "no update bundle (*.raucb) at the top of" in capsys.readouterr().err
    assert not (stick / REPORT_NAME).exists()  # a stick with no bundle at all is left alone
    args[2] = str(tmp_path / "no-such-stick")
    assert main(args) != 0
    assert "is not a folder this box can read" in capsys.readouterr().err


def test_a_watcher_makes_its_update_folder_and_one_it_cannot_write_is_no_crash(tmp_path):
    """`linekeeper update --watch` with no /var/lib/linekeeper-update yet (the simulated box,
    as docs/updates.md runs it) crashed with "storage error: No such file or directory
    (…/.watched.json….tmp)", before the update, which makes that folder, and with no report
    on the stick; a box whose storage refused it crashed the same."""
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "v2.raucb").write_bytes(b"x")
    installed = []
    w = Watcher(
        str(stick), str(tmp_path / "new" / "update"), lambda p, r: installed.append(p) or p, stable_s=0
    )
    assert w.poll() == [str(stick / "v2.raucb")]
    again = Watcher(str(stick), str(tmp_path / "new" / "update"), lambda p, r: p, stable_s=0)
    assert again.poll() == []  # remembered there

    (tmp_path / "card").write_text("a file where the folder would be: the card refuses it")

    class Later:
        later, retry = True, False

    refusing = Watcher(str(stick), str(tmp_path / "card" / "update"), lambda p, r: Later(), stable_s=0)
    assert len(refusing.poll()) == 1  # the update ran, and its report says what failed
