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
