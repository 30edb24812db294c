"""The watched folder for USB sticks: each complete new bundle installed once."""

from firmware.update.watch import Watcher


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
