"""The firmware updates page: versions, the last report, progress, and the upload of a bundle
(installers only; bad uploads refused clearly, audited, nothing kept)."""

import io
import json
import os
import re
import time

import pytest

from firmware.errors import UpdateError
from firmware.update.inbox import UpdateInbox, inbox_dir
from web.views import updates as update_views


def bundle_bytes(size=64 * 1024, signed=True):
    """What a RAUC bundle looks like from outside: a squashfs image (its superblock's
    bytes_used, at byte 40, its length), then (signed) a CMS signature and its length
    in 8 big-endian bytes."""
    body = b"hsqs" + os.urandom(36) + size.to_bytes(8, "little") + os.urandom(size - 48)
    signature = os.urandom(1500) if signed else b""
    return body + signature + len(signature).to_bytes(8, "big")


def upload(box, client, data, filename="linekeeper-2.0.0.raucb"):
    return client.post(
        "/updates/bundle",
        content_type="multipart/form-data",
        data={"csrf_token": box.token_of(client, "/updates"), "bundle": (io.BytesIO(data), filename)},
    )


def inbox(box):
    folder = inbox_dir(box.data_dir)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def update_audit(box):
    return [e for e in box.services.audit.entries(limit=50) if e.action == "update"]


def test_an_installer_s_upload_is_kept_for_the_update_service_and_audited(box, people):
    data = bundle_bytes()
    resp = upload(box, people["ivan"], data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    (name,) = inbox(box)
    assert name.startswith("uploaded-") and name.endswith(".raucb")
    with open(os.path.join(inbox_dir(box.data_dir), name), "rb") as f:
        assert f.read() == data
    (entry,) = update_audit(box)
    assert entry.actor == "ivan" and entry.target == name
    assert entry.details["event"] == "uploaded" and entry.details["size"] == len(data)
    page = people["ivan"].get(resp.headers["Location"]).get_data(as_text=True)
    assert "Uploaded %s" % name in page and "%s is waiting to be installed" % name in page
    # A second upload replaces the first: one bundle waits at a time.
    assert upload(box, people["ivan"], bundle_bytes()).status_code == 302
    assert len(inbox(box)) == 1 and inbox(box) != [name]


def test_an_upload_is_audited_before_the_updater_can_take_it(box, people, monkeypatch):
    """An upload was put in the inbox, then audited: a cut between left a bundle the
    updater would install with no entry saying who uploaded it. The entry now comes
    first, and a cut after it leaves nothing waiting."""
    from firmware.storage import audit as audit_module

    from support.web import Cut

    real = audit_module.AuditLog.append

    def append(self, actor, action, target, details, wall_us):
        entry = real(self, actor, action, target, details, wall_us)
        if action == "update":
            raise Cut()
        return entry

    monkeypatch.setattr(audit_module.AuditLog, "append", append)
    with pytest.raises(Cut):
        upload(box, people["ivan"], bundle_bytes())
    monkeypatch.undo()
    assert [n for n in inbox(box) if n.endswith(".raucb")] == []
    (entry,) = update_audit(box)
    assert entry.details["event"] == "uploaded"


def test_bad_uploads_are_refused_clearly_audited_and_nothing_is_kept(box, people):
    ivan = people["ivan"]
    cases = [
        (b"MZ" + os.urandom(8000), "linekeeper.raucb", "not a RAUC update bundle"),
        (bundle_bytes(signed=False), "linekeeper.raucb", "the bundle is not signed"),
        (bundle_bytes(size=400_000)[:300_000], "linekeeper.raucb", "the bundle is incomplete (292 KB)"),
        (bundle_bytes(), "linekeeper.zip", "is not an update bundle: choose a .raucb file"),
        (b"", "empty.raucb", "the file is empty"),
    ]
    for data, filename, reason in cases:
        resp = upload(box, ivan, data, filename)
        text = resp.get_data(as_text=True)
        assert resp.status_code == 400, filename
        assert "The bundle was refused: " in text and reason in text and "Nothing was changed." in text
        assert inbox(box) == []
    refused = [e.details for e in update_audit(box)]
    assert [d["event"] for d in refused] == ["upload_refused"] * 5
    assert all(d["reason"] for d in refused)


def test_a_bundle_larger_than_the_limit_is_refused(box, people, monkeypatch):
    box.services.updates = UpdateInbox(box.data_dir, max_bytes=256 * 1024)
    resp = upload(box, people["ivan"], bundle_bytes(size=300 * 1024))
    assert resp.status_code == 400
    assert "the file is larger than 256 KB, the most a bundle may be" in resp.get_data(as_text=True)
    assert inbox(box) == []
    # A body larger than the view takes is cut off before it is read at all.
    monkeypatch.setattr(update_views.upload, "max_content_length", 128 * 1024)
    resp = upload(box, people["ivan"], bundle_bytes(size=200 * 1024))
    assert resp.status_code == 413
    assert "the most a bundle may be. Nothing was changed." in resp.get_data(as_text=True)
    assert inbox(box) == []


def test_the_page_shows_the_versions_the_running_step_and_the_last_report(box, people):
    folder = inbox_dir(box.data_dir)
    os.makedirs(folder)
    with open(os.path.join(box.data_dir, "linekeeper-slot.json"), "w") as f:
        json.dump({"version": "2.0.0", "security_version": 2}, f)
    with open(os.path.join(folder, "last-result.json"), "w") as f:
        json.dump({"bundle": "uploaded-1.raucb", "outcome": "installed", "previous_version": "1.0.0"}, f)
    with open(os.path.join(folder, "linekeeper-update-report.txt"), "w") as f:
        f.write("Linekeeper update report\n\nUPDATE INSTALLED\n")
    with open(os.path.join(folder, "progress.json"), "w") as f:
        json.dump({"step": "wait_idle"}, f)
    page = people["ivan"].get("/updates").get_data(as_text=True)
    assert '<dd id="installed-version">2.0.0</dd>' in page
    assert '<dd id="previous-version">1.0.0</dd>' in page
    assert "Updating: wait idle. Do not cut the power." in page
    assert "UPDATE INSTALLED" in page
    state = people["ivan"].get("/updates/state.json").get_json()
    assert state["step"] == "wait_idle" and state["installed_version"] == "2.0.0"
    # While one runs, another upload is refused.
    resp = upload(box, people["ivan"], bundle_bytes())
    assert resp.status_code == 400 and "an update is running" in resp.get_data(as_text=True)


def test_an_installed_update_the_box_does_not_run_says_so_and_to_restart_the_box(box, people):
    """The last update installed 2.0.0 on slot B, and the box runs 1.0.0 (it came back on its
    old slot): before, the page said "The last one: installed" beside version 1.0.0."""
    folder = inbox_dir(box.data_dir)
    os.makedirs(folder)
    with open(os.path.join(box.data_dir, "linekeeper-slot.json"), "w") as f:
        json.dump({"version": "1.0.0", "security_version": 1}, f)
    with open(os.path.join(folder, "last-result.json"), "w") as f:
        json.dump(
            {"bundle": "uploaded-1.raucb", "outcome": "installed", "version": "2.0.0", "slot": "B",
             "previous_version": "1.0.0"},
            f,
        )  # fmt: skip
    said = (
        "Version 2.0.0 was installed on slot B, but the box runs 1.0.0: it did not start the new "
        "version, or went back to the old one. Restart the box; if it comes back on 1.0.0 again, "
        "upload the bundle again or call the supplier. No update is running."
    )
    page = people["ivan"].get("/updates").get_data(as_text=True)
    assert said in page and "The last one: installed" not in page
    assert people["ivan"].get("/updates/state.json").get_json()["after_install"] == said
    assert upload(box, people["ivan"], bundle_bytes()).status_code == 302  # an upload is taken
    # Running the version installed: the page says the update installed, nothing more.
    os.remove(os.path.join(folder, [n for n in inbox(box) if n.endswith(".raucb")][0]))
    with open(os.path.join(box.data_dir, "linekeeper-slot.json"), "w") as f:
        json.dump({"version": "2.0.0", "security_version": 1}, f)
    page = people["ivan"].get("/updates").get_data(as_text=True)
    assert "No update is running. The last one: installed." in page and "Restart the box" not in page


class _HeldStream(io.BytesIO):
    """An upload's body that stops half way until ``go`` is set (a slow connection)."""

    def __init__(self, data, reading, go):
        super().__init__(data)
        self.reading, self.go = reading, go

    def read(self, n=-1):
        if self.tell() >= len(self.getvalue()) // 2:
            self.reading.set()
            assert self.go.wait(10)
        return super().read(min(n, 4096) if n and n > 0 else 4096)


def test_two_uploads_at_once_keep_one_whole_bundle_and_refuse_the_other(tmp_path):
    """Both wrote into the same part file: the bundle kept was a mix of the two under
    the name and SHA-256 audited for one, and the other failed with a crash."""
    import hashlib
    import threading

    inbox_ = UpdateInbox(str(tmp_path))
    first, second = bundle_bytes(256 * 1024), bundle_bytes(256 * 1024)
    reading, go, kept = threading.Event(), threading.Event(), {}
    thread = threading.Thread(
        target=lambda: kept.update(inbox_.save(_HeldStream(first, reading, go), "a.raucb"))
    )
    thread.start()
    try:
        assert reading.wait(10)
        with pytest.raises(Exception) as refused:
            inbox_.save(io.BytesIO(second), "b.raucb")
    finally:
        go.set()
        thread.join(10)
    assert "another bundle is being uploaded: wait for it to finish" in str(refused.value)
    assert kept["sha256"] == hashlib.sha256(first).hexdigest()
    with open(os.path.join(inbox_dir(str(tmp_path)), kept["name"]), "rb") as f:
        assert f.read() == first
    assert sorted(os.listdir(inbox_dir(str(tmp_path)))) == [kept["name"]]


def test_an_upload_while_another_is_stored_is_refused_on_the_page_and_audited(box, people):
    import fcntl

    folder = inbox_dir(box.data_dir)
    os.makedirs(folder, exist_ok=True)
    held = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # another upload being stored
        resp = upload(box, people["ivan"], bundle_bytes())
    finally:
        os.close(held)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "another bundle is being uploaded: wait for it to finish, then upload again" in text
    assert "Nothing was changed." in text and inbox(box) == []
    assert [e.details["event"] for e in update_audit(box)] == ["upload_refused"]


class _Rauc:
    """RAUC's service as the page asks it: ``answer`` is its (operation, last error), its
    progress moving at each question, or the error asking it meets."""

    def __init__(self, answer):
        self.answer = answer
        self.asked = 0

    def installer(self):
        self.asked += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return (*self.answer, (self.asked, "Copying image to app.1", 2))

    def operation(self):
        return self.installer()[:2]


def test_a_still_installing_note_stands_while_rauc_works_and_is_stale_once_it_is_idle(box, people):
    folder = inbox_dir(box.data_dir)
    os.makedirs(folder)
    # What an update that ended "installing" leaves (firmware.update.flow).
    with open(os.path.join(folder, "progress.json"), "w") as f:
        json.dump({"step": "still_installing", "bundle": "uploaded-1.raucb", "ended_us": 1}, f)
    rauc = box.services.updates.rauc = _Rauc(("installing", ""))
    page = people["ivan"].get("/updates").get_data(as_text=True)
    assert "Updating: still installing. Do not cut the power." in page
    resp = upload(box, people["ivan"], bundle_bytes())
    assert resp.status_code == 400 and "an update is running" in resp.get_data(as_text=True)
    assert not [n for n in inbox(box) if n.endswith(".raucb")]

    rauc.answer = ("idle", "")  # RAUC has finished since
    page = people["ivan"].get("/updates").get_data(as_text=True)
    assert "Do not cut the power" not in page
    assert "RAUC has finished writing uploaded-1.raucb" in page
    state = people["ivan"].get("/updates/state.json").get_json()
    assert state["step"] is None and "Upload the bundle again" in state["after_install"]
    assert upload(box, people["ivan"], bundle_bytes()).status_code == 302
    assert [n for n in inbox(box) if n.endswith(".raucb")]


def test_a_still_installing_note_of_an_install_rauc_has_not_answered_about_for_a_whole_wait_is_not_known(
    box, people
):
    # Before, RAUC that cannot be asked kept the page saying "do not cut the power" and refusing
    # every upload for good once the update had ended.
    folder = inbox_dir(box.data_dir)
    os.makedirs(folder)
    # RAUC last answered 31 minutes ago, the wait being 30 (firmware.update.flow).
    answered_us = time.time_ns() // 1000 - 31 * 60_000_000
    note = {"step": "still_installing", "bundle": "uploaded-1.raucb", "ended_us": answered_us}
    with open(os.path.join(folder, "progress.json"), "w") as f:
        json.dump(dict(note, rauc_answered_us=answered_us, install_wait_s=1800), f)
    box.services.updates.rauc = _Rauc(UpdateError("cannot ask RAUC what it is doing: no such bus"))
    page = people["ivan"].get("/updates").get_data(as_text=True)
    assert "Do not cut the power" not in page
    assert (
        "The update of uploaded-1.raucb stopped waiting for RAUC&#39;s install, and RAUC has not "
        "answered for 1800 s (cannot ask RAUC what it is doing: no such bus) since: what RAUC did is "
        "not known." in page
    )
    state = people["ivan"].get("/updates/state.json").get_json()
    assert state["step"] is None and "Restart the box (RAUC with it)" in state["after_install"]
    assert upload(box, people["ivan"], bundle_bytes()).status_code == 302
    # A wait not yet over: still "do not cut the power", and no upload.
    with open(os.path.join(folder, "progress.json"), "w") as f:
        json.dump(dict(note, rauc_answered_us=answered_us + 2 * 60_000_000, install_wait_s=1800), f)
    assert "Do not cut the power" in people["ivan"].get("/updates").get_data(as_text=True)


def _held(box, name, here=True, kind="older", versions=("2.0.0", "1.0.0")):
    """The updater's result for a bundle refused as not newer than the running release."""
    folder = inbox_dir(box.data_dir)
    os.makedirs(folder, exist_ok=True)
    if here:
        with open(os.path.join(folder, name), "wb") as f:
            f.write(bundle_bytes())
    downgrade = {"from": versions[0], "to": versions[1], "kind": kind, "confirmed": False}
    with open(os.path.join(folder, "last-result.json"), "w") as f:
        json.dump({"bundle": name, "outcome": "refused", "downgrade": downgrade}, f)
    return folder


def _confirm(box, client, **form):
    return client.post("/updates/confirm", data=dict(csrf_token=box.token_of(client, "/updates"), **form))


def test_an_older_upload_waits_for_a_deliberate_confirmation_which_is_audited(box, people):
    folder = _held(box, "uploaded-0123456789abcdef.raucb")
    page = people["ivan"].get("/updates").get_data(as_text=True)
    assert "older than the running release (2.0.0 → 1.0.0)" in page
    assert 'id="confirm-button">Install 1.0.0 instead of 2.0.0<' in page
    assert not os.path.exists(os.path.join(folder, "confirm-downgrade.json"))

    resp = _confirm(
        box, people["ivan"], bundle="uploaded-0123456789abcdef.raucb", **{"from": "2.0.0", "to": "1.0.0"}
    )

    assert resp.status_code == 302, resp.get_data(as_text=True)
    with open(os.path.join(folder, "confirm-downgrade.json")) as f:
        note = json.load(f)
    assert (note["bundle"], note["from"], note["to"]) == ("uploaded-0123456789abcdef.raucb", "2.0.0", "1.0.0")
    assert len(note["sha256"]) == 64
    (entry,) = update_audit(box)
    assert entry.actor == "ivan" and entry.details["event"] == "downgrade_confirmed"
    assert (entry.details["from_version"], entry.details["to_version"]) == ("2.0.0", "1.0.0")


def test_the_page_a_confirmation_lands_on_says_the_bundle_waits_not_that_it_was_refused(box, people):
    """Confirmed, the page came back with "Uploaded …, the box installs it", "No update is
    running" and, in an alert, the same "was not installed" and the same button: the press
    seemed to have done nothing, and a screen reader heard the refusal again."""
    _held(box, "uploaded-0123456789abcdef.raucb")
    resp = _confirm(
        box, people["ivan"], bundle="uploaded-0123456789abcdef.raucb", **{"from": "2.0.0", "to": "1.0.0"}
    )
    page = people["ivan"].get(resp.headers["Location"]).get_data(as_text=True)
    assert 'id="update-held"' not in page and "confirm-button" not in page
    assert "uploaded-0123456789abcdef.raucb is waiting to be installed." in page
    state = people["ivan"].get("/updates/state.json").get_json()
    assert state["held"] is None and state["waiting"] == "uploaded-0123456789abcdef.raucb"
    # The updater used the confirmation up and refused again (another file): asked again.
    os.remove(os.path.join(inbox_dir(box.data_dir), "confirm-downgrade.json"))
    assert 'id="confirm-button"' in people["ivan"].get("/updates").get_data(as_text=True)


def test_a_confirmation_for_versions_the_page_no_longer_shows_changes_nothing(box, people):
    folder = _held(box, "uploaded-0123456789abcdef.raucb")
    resp = _confirm(
        box, people["ivan"], bundle="uploaded-0123456789abcdef.raucb", **{"from": "2.0.0", "to": "0.9.0"}
    )
    assert resp.status_code == 409
    assert "not what was confirmed" in resp.get_data(as_text=True)
    assert not os.path.exists(os.path.join(folder, "confirm-downgrade.json")) and update_audit(box) == []


def test_a_reinstall_says_so_and_a_stick_s_older_release_is_to_be_uploaded(box, people):
    _held(box, "uploaded-0123456789abcdef.raucb", kind="same", versions=("2.0.0", "2.0.0"))
    page = people["ivan"].get("/updates").get_data(as_text=True)
    assert "the release running now (2.0.0): installing it is a reinstall" in page
    assert 'id="confirm-button">Reinstall 2.0.0<' in page
    _held(box, "linekeeper-1.0.0.raucb", here=False)
    page = people["ivan"].get("/updates").get_data(as_text=True)
    assert "older than the running release (2.0.0 → 1.0.0)" in page and "confirm-button" not in page
    assert "upload the bundle here and confirm" in page
    resp = _confirm(box, people["ivan"], bundle="linekeeper-1.0.0.raucb", **{"from": "2.0.0", "to": "1.0.0"})
    assert resp.status_code == 409


def test_an_upload_held_back_is_not_said_to_install_when_the_lines_are_idle(box, people):
    """The page an upload lands on said "The box installs it when every line is idle" over
    the notice that the updater held it back as an older release: only the held one is true."""
    name = "uploaded-0123456789abcdef.raucb"
    page = people["ivan"].get("/updates?uploaded=" + name).get_data(as_text=True)
    assert 'id="uploaded"' in page and 'id="update-held"' not in page  # not held (yet)
    _held(box, name)
    page = people["ivan"].get("/updates?uploaded=" + name).get_data(as_text=True)
    assert 'id="update-held"' in page and 'id="uploaded"' not in page
    assert "installs it when every line is idle" not in page
    other = people["ivan"].get("/updates?uploaded=uploaded-fedcba9876543210.raucb").get_data(as_text=True)
    assert 'id="uploaded" data-bundle="uploaded-fedcba9876543210.raucb"' in other  # another bundle's


def test_now_is_a_polite_live_region_drawn_as_the_poll_says_it(box, people):
    """ "Do not cut the power" was never announced: "Now" was no live region. It is drawn in
    the words the 3 s poll writes, so the first poll changes nothing and is not read out."""
    folder = inbox_dir(box.data_dir)
    os.makedirs(folder)
    with open(os.path.join(folder, "last-result.json"), "w") as f:
        json.dump({"bundle": "uploaded-1.raucb", "outcome": "rolled_back"}, f)
    page = people["ivan"].get("/updates").get_data(as_text=True)
    now = re.search(r'<p id="update-now" role="status"[^>]*>(.*?)</p>', page, re.S)
    assert now and now.group(1) == "No update is running. The last one: rolled back.", page
    with open(os.path.join(folder, "progress.json"), "w") as f:
        json.dump({"step": "wait_idle"}, f)
    page = people["ivan"].get("/updates").get_data(as_text=True)
    now = re.search(r'<p id="update-now" role="status"[^>]*>(.*?)</p>', page, re.S)
    assert now.group(1) == "Updating: wait idle. Do not cut the power."


@pytest.mark.parametrize("filename", ["linekeeper\x1b[2J-2.0.0.raucb", "linekeeper-2.0.0\u202ebcuar.raucb"])
def test_a_bundle_whose_name_has_a_control_character_is_refused_and_audited_written_out(
    box, people, filename
):
    """The file name goes into the audit trail: an escape sequence or a direction override
    in it was kept as sent (a signed bundle was taken, its name so), to act on the terminal
    of whoever reads the trail, or to show the name in another order."""
    resp = upload(box, people["ivan"], bundle_bytes(), filename)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "The bundle was refused: its file name cannot be kept as it is." in text
    assert "Nothing was changed." in text
    assert inbox(box) == []
    [entry] = update_audit(box)
    assert entry.details["event"] == "upload_refused"
    assert entry.target == filename.encode("unicode_escape").decode("ascii")
    assert all(c.isprintable() for c in entry.target + entry.details["reason"])
