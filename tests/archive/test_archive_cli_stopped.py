"""Ctrl-C in a `linekeeper archive` command that writes: exit status 130 and one line on
stderr saying what was done and what was not (they gave only the generic "may be done")."""

import os

import pytest

from firmware.archive import queue, viewer
from firmware.storage import fsutil
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import KeyStore
from web.archive.users import ArchiveUsers
from web.passwords import CHEAP_COST

from support.cli import one_line, run_linekeeper, secret_file, stop, stop_after

PASSWORD = "stopped viewer password 7"


def viewer_entries(viewer_dir):
    with AuditLog(os.path.join(viewer_dir, "audit.db"), os.path.join(viewer_dir, "audit.head")) as log:
        return [(e.action, e.details) for e in log.entries(limit=100)][::-1]


@pytest.fixture
def viewer_dir(tmp_path):
    path = str(tmp_path / "viewer")
    os.makedirs(path)
    ArchiveUsers(path, CHEAP_COST).set("dan", PASSWORD, ["auditor"], {"site-a"})
    return path


def test_edit_user_stopped_as_it_saves_says_so_and_audits_the_stop(viewer_dir, monkeypatch):
    monkeypatch.setattr(ArchiveUsers, "set_sites", stop)
    status, out, err = run_linekeeper("archive", "edit-user", "--viewer-dir", viewer_dir, "--name", "dan",
                                      "--sites", "site-b")  # fmt: skip
    assert status == 130
    assert one_line(err) == (
        "linekeeper: archive edit-user stopped part way through dan's change: stopped during: its "
        "sites saved (site-b) (made whole or not at all). The viewer's audit trail shows the change "
        "and its stop; run it again"
    )
    assert viewer_entries(viewer_dir)[-1] == ("config_change", {"change": "user_update", "failed": "stopped"})


def test_disable_user_stopped_in_its_write_says_it_is_made_whole_or_not_at_all(viewer_dir, monkeypatch):
    real = ArchiveUsers.disable

    def disable_then_stop(self, name, *args):
        real(self, name, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(ArchiveUsers, "disable", disable_then_stop)
    status, out, err = run_linekeeper("archive", "disable-user", "--viewer-dir", viewer_dir, "--name", "dan")
    assert status == 130
    # Stopped inside the write: said as the step in progress, written whole or not at all.
    assert one_line(err).startswith(
        "linekeeper: archive disable-user stopped part way through dan's change: stopped during: the "
        "account disabled (made whole or not at all)"
    )
    assert ArchiveUsers(viewer_dir, CHEAP_COST).get("dan").disabled_us is not None
    assert viewer_entries(viewer_dir)[-1][1]["failed"] == "stopped"


def test_a_viewer_account_command_stopped_before_its_change_says_the_account_is_as_it_was(
    viewer_dir, monkeypatch
):
    monkeypatch.setattr(ArchiveUsers, "get", stop)
    status, out, err = run_linekeeper("archive", "enable-user", "--viewer-dir", viewer_dir, "--name", "dan")
    assert status == 130
    assert one_line(err) == (
        "linekeeper: archive enable-user stopped before it changed dan's account: it is as it was"
    )


@pytest.mark.parametrize("when", ["before", "after"])
def test_set_secret_says_whether_the_secret_was_stored(tmp_path, monkeypatch, when):
    data = tmp_path / "data"
    data.mkdir()
    path = data / queue.SECRET_FILE
    secret = secret_file(tmp_path, "secret.txt", "s3 secret")
    assert run_linekeeper("archive", "set-secret", "--data-dir", data, "--secret-file", secret)[0] == 0
    was = path.read_bytes()
    monkeypatch.setattr(fsutil, "atomic_write", stop if when == "before" else stop_after(fsutil.atomic_write))
    status, out, err = run_linekeeper("archive", "set-secret", "--data-dir", data, "--secret-file", secret)
    assert status == 130
    if when == "before":
        assert path.read_bytes() == was
        assert one_line(err) == (
            "linekeeper: archive set-secret stopped before the secret was stored: %s is as it was; "
            "run it again" % path
        )
    else:
        assert path.read_bytes() != was  # sealed anew
        assert (
            one_line(err)
            == "linekeeper: archive set-secret stopped once the secret was stored in %s (whole)" % path
        )


@pytest.mark.parametrize("when", ["before", "after"])
def test_init_org_says_whether_the_key_was_made(tmp_path, monkeypatch, when):
    org = tmp_path / "org"
    password = secret_file(tmp_path, "pw", PASSWORD)
    monkeypatch.setattr(KeyStore, "_store", stop if when == "before" else stop_after(KeyStore._store))
    status, out, err = run_linekeeper("archive", "init-org", "--org-dir", org, "--password-file", password)
    monkeypatch.undo()
    assert status == 130 and "Recovery key" in out
    said = one_line(err)
    if when == "before":
        assert said == (
            "linekeeper: archive init-org stopped before the organisation key was made: %s has none "
            "(a recovery key shown above opens nothing); run it again" % org
        )
        assert not KeyStore(str(org)).is_initialised
    else:
        import base64

        public = base64.b64encode(KeyStore(str(org)).public_key()).decode()
        assert said == (
            "linekeeper: archive init-org stopped once the organisation key was made in %s, with its "
            "recovery key shown above; its org_public_key, for the boxes' config: %s" % (org, public)
        )


@pytest.mark.parametrize(
    "user, password, said",
    [("admin", "short", "a password needs at least 8 characters"), (" admin", PASSWORD, "is not valid")],
)
def test_init_org_refuses_a_bad_password_or_user_and_makes_no_folder(tmp_path, user, password, said):
    org = tmp_path / "new" / "org"
    status, out, err = run_linekeeper("archive", "init-org", "--org-dir", org, "--user", user,
                                      "--password-file", secret_file(tmp_path, "pw", password))  # fmt: skip
    assert status == 2 and said in one_line(err) and "Recovery key" not in out
    assert not (tmp_path / "new").exists()


def test_index_in_a_folder_that_is_not_there_is_refused_by_name(tmp_path):
    index = tmp_path / "missing" / "index.db"
    status, out, err = run_linekeeper("archive", "index", "--endpoint", "http://127.0.0.1:1",
                                      "--bucket", "calls", "--index", index)  # fmt: skip
    assert status == 2 and out == ""
    assert one_line(err) == (
        "linekeeper: --index %s: there is no folder %s to write it in; nothing was read or written"
        % (index, tmp_path / "missing")
    )
    assert not (tmp_path / "missing").exists()


def test_index_stopped_says_the_index_is_the_old_or_the_whole_new_one(tmp_path, monkeypatch):
    index = tmp_path / "index.db"
    monkeypatch.setattr(viewer, "rebuild_index", stop)
    status, out, err = run_linekeeper("archive", "index", "--endpoint", "https://s3.example.net",
                                      "--bucket", "calls", "--index", index)  # fmt: skip
    assert status == 130
    assert one_line(err) == (
        "linekeeper: archive index stopped; %s is the old index as it was, or the whole new one, "
        "never part of one (the bucket is only read); run it again for a new one" % index
    )
