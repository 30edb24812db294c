"""Commands whose file the box keeps a record of (the audit entry naming it, a disclosure log
entry's bundle and hash) never replace a file: `export`, `report`, `year-review` and `config
export` replaced one without a word, as `sar` did (tests/firmware/test_sar.py). Each refuses
it as `audit-export` and `breach-scope` do, naming it; nothing is written and nothing audited
as done."""

import os

import pytest

from firmware.box import open_audit

from support.cli import export_args, recorded_box, run_linekeeper

PASSWORD = "never replaced owner password 7"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, synth):
    """A box with one recorded call (and the signing key its recorder made)."""
    return recorded_box(tmp_path_factory.mktemp("never"), synth, PASSWORD)


def entries(data, action):
    with open_audit(data) as audit:
        return len(audit.entries(limit=10000, action=action))


def commands(data, pw, out):
    """Each command that writes ``out``, and the audit action its file is recorded as."""
    return {
        "export": (export_args(data, 1, out, pw), "export", "an export"),
        "report": (
            ("report", "--data-dir", data, "--password-file", pw, "--from", "2026-03-02", "--to",
             "2026-03-02", "--format", "csv", "--out", out),
            "report",
            "a report",
        ),
        "year-review": (
            ("year-review", "--data-dir", data, "--password-file", pw, "--from", "2026-03-01", "--to",
             "2026-03-31", "--format", "json", "--out", out),
            "report",
            "the year in review",
        ),
        "config export": (
            ("config", "export", out, "--data-dir", data),
            "config_change",
            "a configuration export",
        ),
    }  # fmt: skip


EXTENSION = {"export": ".wav", "report": ".csv", "year-review": ".json", "config export": ".json"}


@pytest.mark.parametrize("command", sorted(EXTENSION))
def test_a_file_there_already_is_refused_and_kept(recorded, tmp_path, command):
    data, pw = recorded
    out = tmp_path / ("taken" + EXTENSION[command])
    args, action, what = commands(data, pw, out)[command]
    out.write_bytes(b"an earlier copy, which its audit entry names\n")
    before = entries(data, action)
    status, _, err = run_linekeeper(*args)
    assert status == 2
    assert err.strip() == (
        "linekeeper: %s is there already: %s never replaces a file; give a new file name — nothing "
        "was written" % (out, what)
    )
    assert out.read_bytes() == b"an earlier copy, which its audit entry names\n"
    assert entries(data, action) == before and [p.name for p in tmp_path.iterdir()] == [out.name]
    # A new name is written.
    fresh = tmp_path / ("fresh" + EXTENSION[command])
    status, _, err = run_linekeeper(*commands(data, pw, fresh)[command][0])
    assert status == 0 and fresh.exists(), err


def test_an_export_whose_manifest_is_there_already_is_refused(recorded, tmp_path):
    """The export's manifest is written beside it (FILE.manifest.json): one there already,
    an earlier export's, is not replaced either."""
    data, pw = recorded
    out = tmp_path / "call.wav"
    manifest = tmp_path / "call.wav.manifest.json"
    manifest.write_text("{}")
    before = entries(data, "export")
    status, _, err = run_linekeeper(*export_args(data, 1, out, pw))
    assert status == 2 and "%s is there already: an export's manifest never replaces a file" % manifest in err
    assert not out.exists() and manifest.read_text() == "{}" and entries(data, "export") == before


@pytest.mark.parametrize("command", sorted(EXTENSION))
def test_a_file_made_there_while_the_command_runs_is_kept(recorded, tmp_path, monkeypatch, command):
    """The look at the start is not enough: a file made at the name while the command ran
    (its temporary file written beside it) was replaced by the last step, a rename. It is
    kept, and refused as at the start; no temporary file is left."""
    from firmware.storage import fsutil

    data, pw = recorded
    out = tmp_path / ("raced" + EXTENSION[command])
    args, _, what = commands(data, pw, out)[command]
    real = fsutil._temp_beside

    def made_meanwhile(path, mode):
        made = real(path, mode)
        if os.path.abspath(path) == str(out):
            out.write_bytes(b"made meanwhile\n")
        return made

    monkeypatch.setattr(fsutil, "_temp_beside", made_meanwhile)
    status, _, err = run_linekeeper(*args)
    assert status == 2, err
    said = err.splitlines()[-1]  # (a year in review's progress line before it)
    assert said.startswith("linekeeper: ") and said.endswith(  # an export's: "call 1 not exported: " first
        "%s is there already: %s never replaces a file; give a new file name — nothing was "
        "written" % (out, what)
    )
    assert out.read_bytes() == b"made meanwhile\n" and [p.name for p in tmp_path.iterdir()] == [out.name]
