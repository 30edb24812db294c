"""Ctrl-C in a `linekeeper` command: exit status 130 and one line on stderr saying it was
stopped and what it left (it exited 130 without a word, but for repair and rekey)."""

import os

import pytest

from firmware import cli, configio
from firmware.box import open_audit
from firmware.storage import fsutil
from firmware.storage.keystore import KeyStore

from support.cli import export_args, one_line, recorded_box, run_linekeeper, secret_file, stop, stop_after

PASSWORD = "stopped box owner password 7"


def entries(data_dir, action):
    with open_audit(data_dir) as audit:
        return [e.details for e in audit.entries(limit=100, action=action)][::-1]


@pytest.fixture
def recorded(tmp_path, synth):
    """A box with one recorded call (and the signing key its recorder made)."""
    return recorded_box(tmp_path, synth, PASSWORD)


def test_a_command_that_only_reads_says_it_changed_nothing(recorded, monkeypatch):
    data, pw = recorded
    monkeypatch.setattr(cli, "_call_log", stop)
    status, out, err = run_linekeeper("calls", "--data-dir", data, "--password-file", pw)
    assert status == 130
    assert one_line(err) == "linekeeper: calls stopped; nothing was changed"


def test_a_report_says_its_file_is_as_it_was_and_the_trail_shows_the_stop(recorded, tmp_path, monkeypatch):
    data, pw = recorded
    monkeypatch.setattr(fsutil, "write_new", stop)
    out_file = tmp_path / "r.json"
    status, out, err = run_linekeeper(
        "report", "--data-dir", data, "--password-file", pw, "--from", "2026-03-02", "--to",
        "2026-03-02", "--format", "json", "--out", out_file,
    )  # fmt: skip
    assert status == 130 and not out_file.exists(), err
    assert one_line(err) == (
        "linekeeper: report stopped after its audit entry was made, before %s was whole (it is as "
        "it was): the audit trail shows the stop; run it again to make the file" % out_file
    )
    assert entries(data, "report")[-1]["failed"] == "stopped"


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_export_says_whether_it_was_audited_and_what_it_wrote(recorded, tmp_path, monkeypatch, when):
    data, pw = recorded
    out_file = tmp_path / "call.wav"
    before = len(entries(data, "export"))
    if when == "before":  # as the audio is read and checked
        from firmware.recording.store import RecordingStore

        monkeypatch.setattr(RecordingStore, "export_bytes", stop)
    else:  # the recording written, not yet its manifest
        real, calls = fsutil.write_new, []

        def second_stopped(*args, **kwargs):
            calls.append(args)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(fsutil, "write_new", second_stopped)
    status, out, err = run_linekeeper(*export_args(data, 1, out_file, pw))
    monkeypatch.undo()
    assert status == 130
    said = one_line(err)
    if when == "before":
        assert said == (
            "linekeeper: export stopped before anything was written or audited; nothing was changed"
        )
        assert len(entries(data, "export")) == before and not out_file.exists()
    else:  # audited, then its failure: the recording written without its manifest removed
        assert said == (
            "linekeeper: export stopped before %s was written whole; nothing was left there; the "
            "trail shows the export failed" % out_file
        )
        assert not out_file.exists() and not os.path.exists(str(out_file) + ".manifest.json")
        made, failed = entries(data, "export")[before:]
        assert failed == dict(made, failed=failed["failed"]) and failed["failed"].startswith("stopped: ")


def test_a_config_import_stopped_part_way_is_audited_and_says_run_it_again(recorded, tmp_path, monkeypatch):
    data, _ = recorded
    doc = tmp_path / "in.json"
    assert run_linekeeper("config", "export", doc, "--data-dir", data)[0] == 0
    monkeypatch.setattr(configio, "save_config", stop)
    status, out, err = run_linekeeper("config", "import", doc, "--data-dir", data)
    assert status == 130, err
    said = one_line(err)
    assert said.startswith("linekeeper: config import stopped part way") and "run the import again" in said
    assert entries(data, "config_change")[-1]["failed"] == "stopped"


def test_a_keystore_backup_stopped_as_it_writes_leaves_no_copy_and_audits_the_stop(
    recorded, tmp_path, monkeypatch
):
    data, _ = recorded
    out_file = tmp_path / "keys.json"
    monkeypatch.setattr(fsutil, "write_new", stop)
    status, out, err = run_linekeeper("keystore", "backup", out_file, "--data-dir", data)
    assert status == 130 and not out_file.exists()
    assert one_line(err) == (
        "linekeeper: keystore backup stopped before %s was written: none of it is there, and "
        "the audit trail shows the stop; make the backup again" % out_file
    )
    assert [d["phase"] for d in entries(data, "key_backup")] == ["made", "failed"]
    assert entries(data, "key_backup")[-1]["reason"] == "stopped"


@pytest.mark.parametrize("when", ["before", "after"])
def test_init_says_whether_the_keys_were_made(tmp_path, monkeypatch, when):
    from firmware import config

    data = tmp_path / "data"
    pw = secret_file(tmp_path, "pw", PASSWORD)
    if when == "before":
        monkeypatch.setattr(config, "save_config", stop)
    else:
        monkeypatch.setattr(KeyStore, "_store", stop_after(KeyStore._store))
    status, out, err = run_linekeeper("init", "--data-dir", data, "--password-file", pw)
    monkeypatch.undo()
    assert status == 130
    said = one_line(err)
    if when == "before":
        assert said.startswith("linekeeper: init stopped before the keys were made")
        assert "run `linekeeper init` again" in said and not KeyStore(str(data)).is_initialised
    else:
        assert said.startswith("linekeeper: init stopped once the keys were made")
        assert KeyStore(str(data)).is_initialised and "Recovery key" in out


def test_any_other_command_says_it_was_stopped_and_may_be_part_done(recorded, monkeypatch):
    data, _ = recorded
    monkeypatch.setattr(cli, "_proven", stop)
    status, out, err = run_linekeeper("hat-replaced", "--data-dir", data, "--password-file", data)
    assert status == 130
    assert one_line(err) == (
        "linekeeper: hat-replaced stopped before it finished: part of what it does may be done; "
        "read what it printed before running it again"
    )
