"""The box as two processes: the web UI can crash without touching a recording.

`linekeeper run` starts `linekeeper recorder` and `linekeeper web`; here the web
UI is killed (SIGKILL) in the middle of a call, `run` starts it again, and the
call's recording comes out complete. From /proc: only the web UI listens on
TCP ports; the recorder has none.
"""

import html
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from web.remote import RECORDER_DOWN, services_for_recorder

LINEKEEPER = [sys.executable, "-m", "firmware.cli"]
PASSWORD = "split box owner password 7"


def cli(*args):
    return subprocess.run(LINEKEEPER + list(args), capture_output=True, text=True, timeout=120)


def children_of(pid):
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == pid:
            role = "recorder" if b"recorder" in argv else "web" if b"web" in argv else "?"
            kids[role] = int(entry)
    return kids


def listening_inodes():
    """Socket inodes of every TCP socket in LISTEN state (IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in list(f)[1:]:
                cols = row.split()
                if cols[3] == "0A":
                    inodes.add(cols[9])
    return inodes


def socket_inodes(pid):
    found = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            found.add(m.group(1))
    return found


def open_device_files(pid):
    names = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            names.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return [n for n in names if n.startswith(("/dev/gpio", "/dev/snd", "/dev/i2c"))]


@pytest.mark.slow
def test_killing_the_web_ui_mid_call_keeps_the_recording(tmp_path):
    data = str(tmp_path / "data")
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    assert cli("init", "--data-dir", data, "--password-file", str(pw)).returncode == 0
    # A box `init` made records nothing until a consent notice is set: one set, a beep.
    with open(os.path.join(data, "config.json")) as f:
        config = json.load(f)
    config["policy"]["consent"]["inbound"] = "tone"
    with open(os.path.join(data, "config.json"), "w") as f:
        json.dump(config, f)
    scenario = tmp_path / "call.json"
    scenario.write_text(
        json.dumps(
            {
                "start": "2026-03-02T09:00:00Z",
                "country": "uk",
                "lines": 2,
                "calls": [
                    {
                        "line": 1,
                        "at": 1.0,
                        "direction": "in",
                        "rings": 1,
                        "talk": 10.0,
                        "speech": [
                            {"at": 0.5, "text": "Hello, this call goes on while the web interface is killed."}
                        ],
                    }
                ],
            }
        )
    )
    with open(tmp_path / "run.log", "w") as log:
        run = subprocess.Popen(
            LINEKEEPER
            + [
                "run",
                "--data-dir",
                data,
                "--scenario",
                str(scenario),
                "--speed",
                "1",
                "--port",
                "0",
                "--https-port",
                "0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "web UI on" not in (tmp_path / "run.log").read_text():
            assert run.poll() is None and time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.1)
        kids = children_of(run.pid)
        assert set(kids) == {"recorder", "web"}
        listening = listening_inodes()
        assert socket_inodes(kids["web"]) & listening, "the web UI listens"
        assert not socket_inodes(kids["recorder"]) & listening, "the recorder listens on nothing"
        assert not socket_inodes(run.pid) & listening
        assert open_device_files(kids["web"]) == []
        os.kill(kids["web"], signal.SIGKILL)  # mid-call: the call runs 1 s .. 12 s
        deadline = time.monotonic() + 30
        while "the web UI stopped" not in (tmp_path / "run.log").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        while (tmp_path / "run.log").read_text().count("web UI on") < 2:
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.1)
        assert children_of(run.pid)["recorder"] == kids["recorder"]  # never restarted
        while "the scenario has ended" not in (tmp_path / "run.log").read_text():
            assert time.monotonic() < deadline + 30, (tmp_path / "run.log").read_text()
            time.sleep(0.2)
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(30)
    assert children_of(run.pid) == {}
    assert not os.path.exists(os.path.join(data, "control.sock"))
    calls = [
        json.loads(line)
        for line in cli("calls", "--data-dir", data, "--password-file", str(pw), "--json").stdout.splitlines()
    ]
    assert len(calls) == 1 and calls[0]["recording"] == "complete", calls
    assert abs(calls[0]["recording_duration_s"] - 11.0) < 0.5
    verify = cli("verify", "--data-dir", data, "--password-file", str(pw))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_web_beside_a_stopped_recorder_says_so(tmp_path):
    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock
    from firmware.control import ControlClient

    data = tmp_path / "data"
    data.mkdir()
    CallLog(str(data / "calls.db"), SimClock()).close()  # as the recorder left it
    services = services_for_recorder(str(data), ControlClient(str(data / "control.sock"), timeout_s=0.2), 3)
    assert RECORDER_DOWN in services.health()["alarms"]
    snap = services.status.snapshot()
    assert snap["recorder"] == "down" and [e["state"] for e in snap["lines"]] == ["unknown"] * 3
    assert services.live.paused_lines() == [] and services.live.recording_lines() == []
    assert services.retention.guard.suspended is None


def test_a_country_changed_in_settings_is_taken_by_the_web_ui_at_once(tmp_path):
    """The Settings page said a change of country took effect at restart; the recorder took
    it at once, while this process kept the old country's announcement voice until then."""
    import numpy as np

    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock
    from firmware.control import ControlClient

    data = tmp_path / "data"
    data.mkdir()
    CallLog(str(data / "calls.db"), SimClock()).close()
    services = services_for_recorder(str(data), ControlClient(str(data / "control.sock"), timeout_s=0.2), 3)
    voices = []

    def espeak(text, voice):
        voices.append(voice)
        return (8000 * np.sin(np.arange(16000) / 3)).astype(np.int16)

    services.consent.announcements._espeak = espeak
    services.consent.samples()
    config = services.box_config.get()
    services.box_config.save(config.replace(country="us"))
    services.consent.samples()
    assert voices == ["en-gb", "en-us"]
    assert services.reports.country == "us"


def test_the_dashboard_says_why_the_recorder_cannot_start(box, people, tmp_path, monkeypatch):
    import dataclasses
    import errno

    from firmware import startfail
    from firmware.control import ControlClient
    from firmware.errors import StorageError

    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(run))
    remote = services_for_recorder(box.data_dir, ControlClient(str(tmp_path / "none.sock"), timeout_s=0.2), 3)
    box.web.services = dataclasses.replace(box.web.services, health=remote.health)
    page = people["ivan"].get("/").get_data(as_text=True)
    assert RECORDER_DOWN in page  # down, and no start has failed: it may be restarting

    refused = StorageError(errno.EIO, "cannot open the data in /var/lib/linekeeper: an I/O error")
    since_us = 1_796_425_915_000_000  # 2026-12-04 23:11:55 UTC
    startfail.record(str(run), refused, since_us)
    startfail.record(str(run), refused, since_us + 30 * 10**6)
    page = people["ivan"].get("/").get_data(as_text=True)
    assert RECORDER_DOWN not in page
    assert (
        "The recorder cannot start: cannot open the data in /var/lib/linekeeper: an I/O error. "
        "It has tried 2 times since Fri 4 Dec 2026, 23:11:55 GMT and tries again every few seconds. "
        "Calls are not being recorded until it starts."
    ) in page, page
    api = people["sam"].get("/api/health").get_json()
    assert api["recorder_start"]["attempts"] == 2
    assert any(text.startswith("The recorder cannot start: cannot open the data") for text in api["alarms"])


def test_beside_an_older_recorder_the_dashboard_says_so_and_a_pause_still_works(box, people, tmp_path):
    """An update left half done: this web UI, which sends the address, beside a recorder
    of the release before. The pause was refused as "Bad arguments for pause: ...
    unexpected keyword argument 'address'" (and the card details recorded). It is now
    carried out in the recorder's version, and the dashboard says to restart both."""
    import dataclasses

    from firmware.control import ControlClient
    from web.remote import RELEASES_DIFFER

    from support.oldrecorder import OldRecorder

    asked = []
    handlers = {
        "health": lambda: {"alarms": [], "clock_synced": True},
        "pausable": lambda: [1],
        "paused": lambda: [],
        "recording": lambda: [1],
        "pause": lambda line, actor: asked.append(("pause", line, actor)),
        "wall_us": lambda: 1_772_442_000_000_000,  # (version 1 had it: the card's days count by it)
    }
    old = OldRecorder(str(tmp_path / "control.sock"), handlers)
    old.start()
    try:
        remote = services_for_recorder(box.data_dir, ControlClient(old.path, timeout_s=2), 3)
        box.web.services = dataclasses.replace(box.web.services, health=remote.health, live=remote.live)
        sam = people["sam"]
        resp = box.post(sam, "/lines/1/pause", {"action": "pause"})
        assert resp.status_code == 302 and asked == [("pause", 1, "sam")]
        page = sam.get("/").get_data(as_text=True)
    finally:
        old.stop()
    said = html.unescape(page)
    assert RELEASES_DIFFER % (1, 2) in said
    assert "The recorder is an older release than the web UI (control protocol version 1" in said
    assert "Restart both (or the box), or run the update again" in said


def test_the_web_ui_starts_without_a_recorder_and_says_why_it_is_down(tmp_path):
    """After a reboot with a card the recorder cannot use, the recorder never answers.
    The web UI waited for it and exited, again and again: nobody could read why on the
    dashboard. It now starts all the same, with the lines its HAT has."""
    import errno

    from firmware import startfail
    from firmware.errors import StorageError

    data = _two_line_box(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    startfail.record(
        str(run), StorageError(errno.EIO, "cannot open the data: an I/O error"), 1_796_425_915_000_000
    )
    env = dict(os.environ, LINEKEEPER_RUN_DIR=str(run))
    web, url = _start_web(data, run, tmp_path / "web.log")
    try:
        text = (tmp_path / "web.log").read_text()
        assert "no recorder answers" in text and "(2 lines)" in text, text
        status, headers, _ = _get(url)
        assert status == 302 and headers["Location"].endswith("/setup"), headers
        # A recorder answers at last: the UI stops, to be started again beside it.
        scenario = tmp_path / "quiet.json"
        scenario.write_text(
            json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 2, "calls": []})
        )
        recorder = subprocess.Popen(
            LINEKEEPER + ["recorder", "--board", "sim", "--scenario", str(scenario), "--data-dir", data],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            assert web.wait(timeout=60) == 75, (tmp_path / "web.log").read_text()
            assert "the recorder answers now" in (tmp_path / "web.log").read_text()
        finally:
            recorder.send_signal(signal.SIGTERM)
            recorder.wait(timeout=60)
    finally:
        if web.poll() is None:
            web.send_signal(signal.SIGTERM)
            web.wait(timeout=30)


def _two_line_box(tmp_path):
    """A data directory with its keys (``linekeeper init``) and an LK-2LB HAT named."""
    data = str(tmp_path / "data")
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    assert cli("init", "--data-dir", data, "--password-file", str(pw)).returncode == 0
    with open(os.path.join(data, "config.json"), "w") as f:
        json.dump({"hat": "lk-2lb"}, f)
    return data


def _start_web(data, run, log_path):
    env = dict(os.environ, LINEKEEPER_RUN_DIR=str(run))
    with open(log_path, "w") as log:
        web = subprocess.Popen(
            LINEKEEPER
            + ["web", "--data-dir", data, "--wait-s", "0.3", "--host", "127.0.0.1"]
            + ["--port", "0", "--https-port", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 60
    text = ""
    while "web UI on" not in text:
        text = log_path.read_text()
        assert web.poll() is None and time.monotonic() < deadline, text
        time.sleep(0.1)
    return web, re.search(r"web UI on (https://\S+/)", text).group(1)


def _get(url):
    """``(status, headers, body)`` of a GET that follows no redirect, certificate unchecked."""
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), NoRedirect)
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def test_a_call_log_that_will_not_open_leaves_a_page_that_says_why(tmp_path):
    """A card that refuses calls.db itself stopped the web UI as well as the recorder (it
    opens the same file): the browser found nothing, only the journal said why. It now
    serves a page that names the file and the error, with the recorder's reason, and
    gives way to the full web UI once the file opens."""
    import errno

    from firmware import startfail
    from firmware.errors import StorageError

    data = _two_line_box(tmp_path)
    damaged = os.urandom(4096)
    with open(os.path.join(data, "calls.db"), "wb") as f:
        f.write(damaged)
    run = tmp_path / "run"
    run.mkdir()
    startfail.record(
        str(run), StorageError(errno.EIO, "calls.db is damaged or unreadable"), 1_796_425_915_000_000
    )
    web, url = _start_web(data, run, tmp_path / "web.log")
    try:
        for path in ("", "calls", "login"):
            status, headers, body = _get(url + path)
            assert status == 503 and headers["Cache-Control"] == "no-store", (path, status)
            assert "calls.db: it is not a database (damaged or replaced)" in body, body
            assert "The recorder cannot start: calls.db is damaged or unreadable" in body, body
        status, _, body = _get(url + "api/health")
        health = json.loads(body)
        assert status == 503 and health["ok"] is False and "calls.db" in health["data_refused"]
        assert health["recorder_start"]["attempts"] == 1
        assert "setup code" not in (tmp_path / "web.log").read_text()  # no setup on a refused card
        with open(os.path.join(data, "calls.db"), "rb") as f:
            assert f.read() == damaged  # nothing changed
        # A technician puts the call log right (here: the recorder makes a new one).
        os.remove(os.path.join(data, "calls.db"))
        assert web.wait(timeout=60) == 75, (tmp_path / "web.log").read_text()
    finally:
        if web.poll() is None:
            web.send_signal(signal.SIGTERM)
            web.wait(timeout=30)
    web, url = _start_web(data, run, tmp_path / "web2.log")
    try:
        status, headers, _ = _get(url)
        assert status == 302 and headers["Location"].endswith("/setup")
    finally:
        web.send_signal(signal.SIGTERM)
        assert web.wait(timeout=30) == 0


def test_a_stopped_web_ui_leaves_no_session_in_web_db(tmp_path):
    """`linekeeper web` stopped (SIGTERM from systemd, Ctrl-C) never closed the web UI: the
    sessions stayed in web.db until the next start, and the keys their logins unlocked in
    memory until the process was gone. Its stop now ends them."""
    import sqlite3

    data = _two_line_box(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    web, _ = _start_web(data, run, tmp_path / "web.log")
    try:
        # A session as a login makes it; its times far ahead, so no sweep ends it first.
        later_us = int(time.time() * 1_000_000) + 365 * 86400 * 1_000_000
        db = sqlite3.connect(os.path.join(data, "web.db"), timeout=30)
        with db:
            db.execute(
                "INSERT INTO sessions (id_hash, user, csrf, created_us, seen_us) VALUES (?, ?, ?, ?, ?)",
                ("0" * 64, "sam", "csrf", later_us, later_us),
            )
        db.close()
    finally:
        web.send_signal(signal.SIGTERM)
        assert web.wait(timeout=60) == 0, (tmp_path / "web.log").read_text()
    db = sqlite3.connect(os.path.join(data, "web.db"))
    try:
        assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    finally:
        db.close()


def test_the_web_ui_s_stop_forgets_the_keys_its_logins_unlocked(tmp_path):
    """As `linekeeper web` serves it (web.server.start_web_process): the server's stop closes
    the web UI, so a recording key unlocked by a login leaves memory with the stop."""
    from firmware.control import ControlClient, socket_path
    from web.passwords import CHEAP_COST
    from web.server import start_web_process

    class Key:
        public_key = None
        forgotten = False

        def forget(self):
            self.forgotten = True

    data = _two_line_box(tmp_path)
    server = start_web_process(
        data, ControlClient(socket_path(data)), 2, https_port=0, http_port=0, hash_cost=CHEAP_COST
    )
    try:
        web = server.app.extensions["linekeeper"]
        with web.db.tx() as conn:
            web.accounts.create(conn, "sam", "a long enough password 7", {"supervisor"}, [1])
        key = Key()
        web.sessions.create("sam", recording_key=key)
    finally:
        server.stop()
    assert key.forgotten and not web.sessions.memory


def test_beside_a_recorder_the_ico_renewal_alarm_is_raised_and_stays(box, people, tmp_path):
    """On a box the web UI runs beside the recorder, two processes. The date checks (the
    ICO registration's renewal, the HTTPS certificate's end) ran only in the recorder's
    round, which knows neither the site settings nor the certificate (only a web UI in the
    recorder's own process told it them): it cleared those alarms at every round, and the
    web UI's round ran no check, so a registration past its renewal date raised nothing.
    The web UI's round checks them now, and the recorder's, told no date, leaves them be."""
    from firmware.alarmchecks import DateChecks
    from firmware.control import ControlClient

    from .test_documents import change_site

    change_site(box, ico_renewal="2026-01-31")  # before the box's clock and the machine's
    remote = services_for_recorder(box.data_dir, ControlClient(str(tmp_path / "none.sock"), timeout_s=0.2), 3)
    remote.mail.deliver = False  # (the checks alone: no mail server here)
    remote.mail.tick()
    expired = [a for a in remote.alarms.banner() if a["kind"] == "ico_expired" and a["cleared_us"] is None]
    assert len(expired) == 1 and "2026-01-31" in expired[0]["message"]
    # The recorder's round, as the recorder makes it (told neither date), clears nothing.
    DateChecks(remote.alarms, remote.wall_us)()
    assert [
        a["id"] for a in remote.alarms.banner() if a["kind"] == "ico_expired" and a["cleared_us"] is None
    ] == [expired[0]["id"]]


def test_beside_a_recorder_the_reminders_are_alarms_raised_mailed_and_cleared(box, people, tmp_path):
    """No retention period and a recovery key never confirmed were only said on the pages
    (dashboard, checklist): not in the alarm history, never mailed. The web UI's round
    raises them as alarms now, mailed like any, and clears each once its setting is made."""
    import dataclasses

    from firmware.control import ControlClient
    from firmware.mail.settings import MailSettings

    box.services.mail.store.save(
        MailSettings(host="mail.example.com", sender="box@example.com", alarm_to=("ops@example.com",))
    )
    box.web.site.set_recovery_confirmed(False)
    remote = services_for_recorder(box.data_dir, ControlClient(str(tmp_path / "none.sock"), timeout_s=0.2), 3)
    remote.mail.deliver = False
    remote.mail.tick()

    reminders = ("retention_unset", "recovery_key_unconfirmed")

    def on():
        return sorted(
            a["kind"] for a in remote.alarms.banner() if a["cleared_us"] is None and a["kind"] in reminders
        )

    def mailed():
        return sorted(p["subject"] for p in remote.mail.queue.pending() if "ICO" not in p["subject"])

    assert on() == ["recovery_key_unconfirmed", "retention_unset"]
    assert mailed() == [
        "[Acme Plumbing Ltd] Alarm on the box: No retention period is set",
        "[Acme Plumbing Ltd] Alarm on the box: The recovery key was never confirmed as stored",
    ]
    remote.mail.tick()  # still so: the same occurrences, not mailed again
    assert len([a for a in remote.alarms.history() if a["kind"] in reminders]) == 2 and len(mailed()) == 2
    config = box.config_store.get()
    retention = dataclasses.replace(config.policy.retention, default_days=90)
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, retention=retention)))
    box.web.site.set_recovery_confirmed(True)
    remote.mail.tick()
    assert on() == []
    assert sorted(
        (e.details["kind"], e.details["event"])
        for e in box.audit.entries(limit=20, action="alarm")
        if e.details["kind"] in reminders
    ) == sorted((kind, event) for kind in reminders for event in ("raised", "cleared"))


def test_beside_a_recorder_the_key_store_backup_and_the_dpia_review_are_alarms(box, people, tmp_path):
    """The key store's backup out of date and the DPIA over a year since its review were only
    amber on the checklist, which the owner never opens: a dead card without a current
    backup loses every recording. The web UI (web.server._serve, as `linekeeper web` serves
    it) tells the round the checklist's ambers: alarms with its reasons, mailed once,
    cleared once a backup is made and the review recorded."""
    import datetime as dt

    from firmware import keybackup
    from firmware.control import ControlClient
    from firmware.mail.settings import MailSettings
    from web.passwords import CHEAP_COST
    from web.server import _serve
    from web.tls import ensure_certificate

    from .test_documents import change_site

    box.services.mail.store.save(
        MailSettings(host="mail.example.com", sender="box@example.com", alarm_to=("ops@example.com",))
    )
    change_site(box, dpia_reviewed="2025-01-15")
    remote = services_for_recorder(box.data_dir, ControlClient(str(tmp_path / "none.sock"), timeout_s=0.2), 3)
    remote.mail.deliver = False
    server = _serve(
        box.data_dir,
        remote,
        ensure_certificate(box.data_dir),
        "127.0.0.1",
        0,
        0,
        None,
        {"hash_cost": CHEAP_COST},
    )
    kinds = ("keystore_backup_stale", "dpia_review_due")
    try:
        remote.mail.tick()
        remote.mail.tick()  # still so: the same occurrences, not mailed again
        open_rows = {
            a["kind"]: a for a in remote.alarms.banner() if a["cleared_us"] is None and a["kind"] in kinds
        }
        assert open_rows["keystore_backup_stale"]["message"].startswith(
            "no backup of the key store was made; an installer "
        )
        assert open_rows["dpia_review_due"]["message"] == (
            "the DPIA was last reviewed on Wed 15 Jan 2025, over a year ago: look at it again (Settings)"
        )
        assert sorted(
            p["subject"]
            for p in remote.mail.queue.pending()
            if "DPIA" in p["subject"] or "key store" in p["subject"]
        ) == [
            "[Acme Plumbing Ltd] Alarm on the box: "
            "The data protection impact assessment (DPIA) is due for review",
            "[Acme Plumbing Ltd] Alarm on the box: The key store has no current backup",
        ]
        # A backup made with `linekeeper keystore backup` (the pages' logins ended when this
        # web UI started), as its audit entry says.
        current = keybackup.key_store_fingerprint(box.services.keystore.public_key())
        details = {"phase": "made", "key_store": current, "via": "cli"}
        box.services.audit.append("cli", "key_backup", None, details, box.clock())
        box.services.audit.flush()
        change_site(box, dpia_reviewed=(dt.date.today() - dt.timedelta(days=1)).isoformat())
        remote.mail.tick()
        assert [
            a["kind"] for a in remote.alarms.banner() if a["cleared_us"] is None and a["kind"] in kinds
        ] == []
    finally:
        server.stop()
    assert sorted(
        (e.details["kind"], e.details["event"])
        for e in box.audit.entries(limit=50, action="alarm")
        if e.details["kind"] in kinds
    ) == sorted((kind, event) for kind in kinds for event in ("raised", "cleared"))


def test_beside_a_recorder_the_web_ui_s_round_watches_the_uploads_it_runs(tmp_path):
    """`linekeeper web` uploads to the archive (the recorder has no network): its round
    watches those uploads for a stall (ArchiveStall, on the archive's status); a box
    without an archive has nothing to watch."""
    import base64

    from firmware.alarmchecks import ArchiveStall
    from firmware.archive.queue import write_secret
    from firmware.archive.settings import ArchiveSettings
    from firmware.config import load_config, save_config
    from firmware.control import ControlClient, socket_path
    from firmware.storage import crypto
    from web.passwords import CHEAP_COST
    from web.server import start_web_process

    def watches(data):
        server = start_web_process(
            data, ControlClient(socket_path(data)), 2, https_port=0, http_port=0, hash_cost=CHEAP_COST
        )
        try:
            services = server.app.extensions["linekeeper"].services
            return [c.status is services.archive for c in services.mail.checks if isinstance(c, ArchiveStall)]
        finally:
            server.stop()

    data = _two_line_box(tmp_path)
    assert watches(data) == []
    archive = ArchiveSettings(
        enabled=True,
        endpoint="http://127.0.0.1:9",  # nothing answers: the uploads wait
        bucket="nowhere",
        box_id="golf",
        access_key_id="key",
        verify_tls=False,
        org_public_key=base64.b64encode(crypto.new_key_pair()[1]).decode(),
    )
    save_config(data, load_config(data).replace(archive=archive))
    write_secret(data, "secret")
    assert watches(data) == [True]


def test_a_damaged_certificate_leaves_the_web_ui_starting_with_a_new_one_and_says_so(tmp_path):
    """Issue: a damaged tls/cert.pem (cut short) stopped `linekeeper web` at start, and the
    installer was locked out of the box's only admin page. It starts with a new certificate,
    says so on the console with the new fingerprint and where the old file is kept, and
    audits it."""
    from firmware.storage.audit import AuditLog
    from web.tls import ensure_certificate

    data = _two_line_box(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    ensure_certificate(data)  # as its first start made them
    with open(os.path.join(data, "tls", "cert.pem"), "rb") as f:
        damaged = f.read()[:100]
    with open(os.path.join(data, "tls", "cert.pem"), "wb") as f:
        f.write(damaged)
    web, url = _start_web(data, run, tmp_path / "web.log")
    try:
        status, _, _ = _get(url)
        assert status in (200, 302)
        text = (tmp_path / "web.log").read_text()
        fingerprint = re.search(r"certificate has SHA-256 fingerprint (\S+)", text).group(1)
        (kept,) = [n for n in os.listdir(os.path.join(data, "tls")) if n.startswith("cert.pem.")]
        assert "certificate was made anew" in text and kept in text and "browsers will warn" in text, text
        assert kept.startswith("cert.pem.unreadable.")
        with open(os.path.join(data, "tls", kept), "rb") as f:
            assert f.read() == damaged
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=30)
    audit = AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))
    try:
        (entry,) = audit.entries(action="https_replaced", limit=5)
    finally:
        audit.close()
    assert entry.details["fingerprint"] == fingerprint and entry.details["kept"] == [kept]
