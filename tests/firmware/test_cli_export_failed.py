"""`linekeeper export` that fails to write, or is stopped by Ctrl-C as it writes: audited after
its entry as ``failed`` (which file was not written), with nothing left and no recording
counted as taken, in the breach scope or in the reports' exports by user."""

import errno
import os
from types import SimpleNamespace

import pytest

from firmware.box import open_audit
from firmware.breachscope import scope
from firmware.reports import compute
from firmware.storage import fsutil

from support.cli import export_args, recorded_box, run_linekeeper, stop, stop_after

PASSWORD = "failed export owner password 7"
ALL_TIME = (0, 4_000_000_000_000_000)  # 1970 to 2096, in µs


@pytest.fixture
def recorded(tmp_path, synth):
    """A box with one recorded call (and the signing key its recorder made)."""
    return recorded_box(tmp_path, synth, PASSWORD)


def full_card_at(monkeypatch, nth):
    """The ``nth`` file export writes (1: the recording, 2: its manifest) meets a full card."""
    real, calls = fsutil.write_new, []

    def write(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == nth:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(fsutil, "write_new", write)


def stopped_at(monkeypatch, nth, stopped):
    """Ctrl-C in the ``nth`` file export writes (1: the recording, 2: its manifest):
    ``stopped(real)`` replaces that write (:func:`stop`: nothing written; :func:`stop_after`:
    written whole, then Ctrl-C)."""
    real, calls = fsutil.write_new, []

    def write(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == nth:
            return stopped(real)(*args, **kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(fsutil, "write_new", write)


def exports(data):
    with open_audit(data) as audit:
        return [e.details for e in audit.entries(limit=100, action="export", newest_first=False)]


def taken(data):
    """The breach scope's summary of admin's access, and the reports' exports by user."""
    with open_audit(data) as audit:
        _rows, summary = scope(audit, os.path.join(data, "calls.db"), "admin", *ALL_TIME)
    access = compute._access(
        os.path.join(data, "audit.db"), SimpleNamespace(start_us=ALL_TIME[0], end_us=ALL_TIME[1])
    )
    return summary, access["export"]


@pytest.mark.parametrize(
    "nth, said",
    [
        (1, "the recording was not written: No space left on device"),
        (
            2,
            "its manifest was not written: No space left on device; the recording written before "
            "it was removed",
        ),
    ],
)
def test_a_failed_export_is_audited_as_failed_and_counted_as_no_copy(
    recorded, tmp_path, monkeypatch, nth, said
):
    data, pw = recorded
    out_file = tmp_path / "call.wav"
    full_card_at(monkeypatch, nth)
    status, _out, err = run_linekeeper(*export_args(data, 1, out_file, pw))
    monkeypatch.undo()
    assert status != 0 and "No space left on device" in err, err
    assert not out_file.exists() and not os.path.exists(str(out_file) + ".manifest.json")
    made, failed = exports(data)
    assert "failed" not in made and "refused" not in made
    assert failed == dict(made, failed=said)
    summary, exported = taken(data)
    assert summary["recordings"] == 0 and summary["calls"] == 0
    assert summary["actions"] == {"export (failed)": 2}
    assert summary["first_access"] is None
    assert exported == {}


def test_an_export_whose_recording_stayed_without_its_manifest_is_a_copy_taken(
    recorded, tmp_path, monkeypatch
):
    data, pw = recorded
    out_file = tmp_path / "call.wav"
    full_card_at(monkeypatch, 2)

    def cannot_remove(path):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "remove", cannot_remove)
    status, _out, err = run_linekeeper(*export_args(data, 1, out_file, pw))
    monkeypatch.undo()
    assert status != 0 and "could not be removed (Read-only file system)" in err, err
    assert out_file.exists()
    made, failed = exports(data)
    assert failed == dict(
        made,
        failed="its manifest was not written: No space left on device; the recording written "
        "before it could not be removed",
        left="call.wav",
    )
    summary, exported = taken(data)
    assert summary["recordings"] == 1 and summary["actions"] == {"export": 1, "export (failed)": 1}
    assert exported == {"admin": 1}


def test_an_export_written_whole_is_one_copy_taken(recorded, tmp_path):
    data, pw = recorded
    status, _out, err = run_linekeeper(*export_args(data, 1, tmp_path / "call.wav", pw))
    assert status == 0, err
    summary, exported = taken(data)
    assert summary["recordings"] == 1 and summary["actions"] == {"export": 1}
    assert exported == {"admin": 1}


@pytest.mark.parametrize(
    "nth, stopped, said",
    [
        (1, lambda real: stop, "stopped: the recording was not written"),
        (
            2,
            lambda real: stop,
            "stopped: its manifest was not written; the recording written before it was removed",
        ),
        # The recording's file renamed into place, the Ctrl-C before its folder was synced.
        (
            1,
            stop_after,
            "stopped: its manifest was not written; the recording written before it was removed",
        ),
    ],
)
def test_an_export_stopped_as_it_writes_is_audited_as_failed_and_leaves_nothing(
    recorded, tmp_path, monkeypatch, nth, stopped, said
):
    data, pw = recorded
    out_file = tmp_path / "call.wav"
    stopped_at(monkeypatch, nth, stopped)
    status, _out, err = run_linekeeper(*export_args(data, 1, out_file, pw))
    monkeypatch.undo()
    assert status == 130, err
    assert "nothing was left there; the trail shows the export failed" in err, err
    assert not out_file.exists() and not os.path.exists(str(out_file) + ".manifest.json")
    made, failed = exports(data)
    assert "failed" not in made and failed == dict(made, failed=said)
    summary, exported = taken(data)
    assert summary["recordings"] == 0 and summary["actions"] == {"export (failed)": 2}
    assert exported == {}


def test_an_export_stopped_once_both_files_are_written_is_a_copy_taken(recorded, tmp_path, monkeypatch):
    data, pw = recorded
    out_file = tmp_path / "call.wav"
    stopped_at(monkeypatch, 2, stop_after)
    status, _out, err = run_linekeeper(*export_args(data, 1, out_file, pw))
    monkeypatch.undo()
    assert status == 130 and "its manifest were written (audited)" in err, err
    assert out_file.exists() and os.path.exists(str(out_file) + ".manifest.json")
    assert [("failed" in e) for e in exports(data)] == [False]
    summary, exported = taken(data)
    assert summary["recordings"] == 1 and exported == {"admin": 1}


def test_an_export_stopped_whose_recording_cannot_be_removed_is_a_copy_taken(recorded, tmp_path, monkeypatch):
    data, pw = recorded
    out_file = tmp_path / "call.wav"
    stopped_at(monkeypatch, 2, lambda real: stop)

    def cannot_remove(path):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "remove", cannot_remove)
    status, _out, err = run_linekeeper(*export_args(data, 1, out_file, pw))
    monkeypatch.undo()
    assert status == 130 and "could not be removed (Read-only file system)" in err, err
    assert out_file.exists()
    made, failed = exports(data)
    assert failed == dict(
        made,
        failed="stopped: its manifest was not written; the recording written before it could not be removed",
        left="call.wav",
    )
    summary, exported = taken(data)
    assert summary["recordings"] == 1 and exported == {"admin": 1}


@pytest.mark.parametrize("name", ["c1", "c1.mp3"])
def test_an_out_without_a_known_extension_says_so_and_lists_the_ones_taken(recorded, tmp_path, name):
    """`export ... --out out/c1` said "not 'out/c1'", quoting the whole path as if it were
    the extension. A name it cannot take is bad input, refused before the password, as the
    other commands' file names are (tests/firmware/test_cli_file_names.py): nothing audited."""
    data, pw = recorded
    (tmp_path / "out").mkdir()
    out_file = tmp_path / "out" / name
    before = exports(data)
    status, _out, err = run_linekeeper(*export_args(data, 1, out_file, pw))
    said = "--out %s: an export is a .wav or .ogg file; give a name ending .wav or .ogg — nothing was written"
    assert (status, err) == (2, "linekeeper: %s\n" % (said % out_file))
    assert os.listdir(tmp_path / "out") == [] and exports(data) == before
