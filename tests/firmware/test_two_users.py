"""What one service makes, the other can use, as two users (the appliance's services):
found by a review that ran each flow as linekeeper-rec and linekeeper-web."""

import email.parser  # noqa: F401 (imported before the fork: the child cannot read this Python's folders)
import os
from email.message import EmailMessage

import pytest

# SecretBox.seal asks whether an update is on trial (firmware.update.inbox, imported when
# first asked): imported before the fork too.
import firmware.update.inbox  # noqa: F401

from support.twousers import RECORDER, WEB, as_user, shared_data_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="two users need root to be made (CI runs as root)")


def _both(first, then):
    with shared_data_dir() as data:
        assert as_user(first[0], lambda: first[1](str(data))) == 0, "the first service failed"
        assert as_user(then[0], lambda: then[1](str(data))) == 0, "the other service could not use it"


def test_alarm_mail_the_recorder_queues_is_delivered_by_the_web_ui():
    from firmware.mail.queue import MailQueue

    def queue(data):
        msg = EmailMessage()
        msg["Subject"] = "Line fault"
        msg.set_content("no line voltage")
        MailQueue(os.path.join(data, "mail", "queue"), lambda: 1).enqueue(msg, key="k1")

    def deliver(data):
        q = MailQueue(os.path.join(data, "mail", "queue"), lambda: 2)
        assert [m["subject"] for m in q.pending()] == ["Line fault"]

        class Sent:
            def send(self, msg):
                return {}

        assert q.flush(Sent()) == (1, 0)

    _both((RECORDER, queue), (WEB, deliver))


def test_mail_settings_the_web_ui_saves_are_read_by_the_recorder():
    from firmware.mail.settings import MailSettings, MailSettingsStore
    from firmware.secretbox import SecretBox

    def save(data):
        MailSettingsStore(data, SecretBox(data, identity=b"t")).save(
            MailSettings(
                host="mail.example.com", sender="Shop <box@example.com>", alarm_to=("a@example.com",)
            ),
            new_password="smtp password",
        )

    def read(data):
        store = MailSettingsStore(data, SecretBox(data, identity=b"t"))
        settings = store.get()
        assert settings.alarm_to == ("a@example.com",)
        assert settings.sender == "Shop <box@example.com>"  # its name kept beside mail.json
        assert store.password(settings) == "smtp password"

    _both((WEB, save), (RECORDER, read))


def test_the_alarm_history_is_written_by_both():
    from firmware.alarmlog import AlarmLog
    from firmware.clock import SimClock

    def raise_one(data):
        log = AlarmLog(os.path.join(data, "alarms.db"), SimClock())
        log.set("line_fault", True, line=1, message="no line voltage")
        log.close()

    def acknowledge(data):
        log = AlarmLog(os.path.join(data, "alarms.db"), SimClock())
        (row,) = [r for r in log.banner() if r["kind"] == "line_fault"]
        log.acknowledge(row["id"], "sam")  # an UPDATE: refused on a database it cannot write
        log.set("archive_failed", True, message="the bucket refused")  # the web UI's own alarm
        assert not log._unwritten
        log.close()

    _both((RECORDER, raise_one), (WEB, acknowledge))


def test_the_requests_register_the_web_ui_keeps_is_checked_by_the_recorder():
    import datetime as dt

    from firmware.alarmlog import AlarmLog
    from firmware.rights import OverdueCheck, RightsRegister

    def log_one(data):
        register = RightsRegister(data)
        register.add(
            actor="sam",
            kind="access",
            received=dt.date(2026, 1, 5),
            requester="Jo",
            contact="jo@example.org",
            numbers="",
            details="a copy",
            today=dt.date(2026, 1, 5),
            wall_us=1,
        )
        register.close()

    def check(data):
        alarms = AlarmLog(os.path.join(data, "alarms.db"), clock=None)
        OverdueCheck(alarms, data, lambda: 1_780_000_000_000_000)()  # May 2026: overdue
        assert alarms.open_box_alarms() == {"request_overdue"}
        alarms.close()

    _both((WEB, log_one), (RECORDER, check))


def test_the_alarm_mails_windows_are_kept_by_both(monkeypatch):
    import firmware.mail.alarms
    from firmware.mail.alarms import STATE_FILE, AlarmMailer
    from firmware.mail.settings import MailSettings

    # (The mail's words are not what is tested, and the child cannot read the time zones.)
    monkeypatch.setattr(firmware.mail.alarms, "alarm_message", lambda *args, **kwargs: "the mail")

    settings = MailSettings(host="mail.example", sender="box@example.com", alarm_to=("a@example.com",))

    class Queue:
        def __init__(self, may):
            self.may = may

        def enqueue(self, msg):
            assert self.may, "mailed again within the window the other service began"
            self.may = False

    def mailer(data, may):
        os.makedirs(os.path.join(data, "mail"), exist_ok=True)
        row = {"id": 1, "kind": "disk_warning", "line": 0, "message": "", "raised_us": 1}
        path = os.path.join(data, STATE_FILE)
        AlarmMailer(Queue(may), lambda: settings, lambda: 1, state_path=path)(row)
        assert os.access(path, os.R_OK | os.W_OK) and os.access(path + ".lock", os.R_OK | os.W_OK)

    _both((RECORDER, lambda data: mailer(data, True)), (WEB, lambda data: mailer(data, False)))


def test_web_db_is_read_by_the_recorder():
    from web.db import WebDb

    def make(data):
        WebDb(os.path.join(data, "web.db")).close()

    def read(data):
        import sqlite3

        db = sqlite3.connect("file:%s?mode=rw" % os.path.join(data, "web.db"), uri=True)
        db.execute("SELECT count(*) FROM site").fetchone()
        db.close()

    _both((WEB, make), (RECORDER, read))


def test_the_archive_queue_the_recorder_makes_is_written_by_the_web_ui():
    from firmware.archive.queue import Db

    schema = "CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, state TEXT);"

    def make(data):
        db = Db(os.path.join(data, "archive-queue.db"), schema)
        db.execute("INSERT INTO jobs (state) VALUES ('waiting')")

    def upload(data):
        db = Db(os.path.join(data, "archive-queue.db"), schema)
        db.execute("UPDATE jobs SET state = 'done'")

    _both((RECORDER, make), (WEB, upload))


def test_a_note_the_web_ui_leaves_is_raised_by_the_recorder():
    from firmware.alarminbox import AlarmInbox, post_note
    from firmware.alarmlog import AlarmLog
    from firmware.clock import SimClock

    def post(data):
        assert post_note(data, "archive_failed", "the bucket refused the upload", 1_000_000) is not None

    def take(data):
        log = AlarmLog(os.path.join(data, "alarms.db"), SimClock())
        assert AlarmInbox(data, log)() == 1
        log.close()

    _both((WEB, post), (RECORDER, take))


def test_what_an_older_release_made_0600_is_shared_again_at_the_next_start():
    """An updated box keeps the files the release before made 0600: each service gives
    the ones it owns the box's data mode as it starts."""
    from firmware.storage.fsutil import share_own_files

    def old_release(data):
        for name in ("mail.json", "web.db", "web.db-wal"):
            with open(os.path.join(data, name), "w") as f:
                f.write("{}")
            os.chmod(os.path.join(data, name), 0o600)

    def read(data):
        with open(os.path.join(data, "mail.json")) as f:
            f.read()

    with shared_data_dir() as data:
        assert as_user(WEB, lambda: old_release(str(data))) == 0
        assert as_user(RECORDER, lambda: read(str(data))) == 1  # as the release before left it
        assert as_user(RECORDER, lambda: share_own_files(str(data))) == 0  # not the recorder's to change
        assert as_user(WEB, lambda: share_own_files(str(data))) == 0  # the web UI's start
        assert as_user(RECORDER, lambda: read(str(data))) == 0
        assert oct(os.stat(data / "web.db-wal").st_mode & 0o777) == "0o660"


def test_the_archive_secret_root_stores_is_read_by_the_web_ui():
    """`linekeeper archive set-secret` is run as root (docs/archive.md); the web UI uploads."""
    from firmware.archive.queue import read_secret, write_secret
    from firmware.secretbox import SecretBox

    def read(data):
        assert read_secret(data, SecretBox(data, identity=b"t")) == "s3 secret"

    with shared_data_dir() as data:
        old = os.umask(0o022)  # an installer's root shell
        try:
            write_secret(str(data), "s3 secret", SecretBox(str(data), identity=b"t"))
        finally:
            os.umask(old)
        assert as_user(WEB, lambda: read(str(data))) == 0


def test_root_never_hands_over_a_file_a_service_links_in():
    """A service user could link secrets.key to any file (the data directory is the group's
    to write); root's set-secret then gave that file to the group, 0660."""
    import tempfile

    from firmware.archive.queue import write_secret
    from firmware.secretbox import SecretBox

    with shared_data_dir() as data:
        with tempfile.NamedTemporaryFile(dir=os.path.dirname(data), delete=False) as f:
            f.write(b"root's own")
        os.chmod(f.name, 0o600)
        assert as_user(WEB, lambda: os.symlink(f.name, os.path.join(data, "secrets.key"))) == 0
        with pytest.raises(OSError):
            write_secret(str(data), "s3 secret", SecretBox(str(data), identity=b"t"))
        st = os.stat(f.name)
        assert (st.st_uid, oct(st.st_mode & 0o777)) == (0, "0o600")


def test_a_service_s_start_never_reaches_through_a_link():
    """share_own_files followed a linked folder (mail/ -> elsewhere) and opened a private
    file there to the group."""
    from firmware.storage.fsutil import share_own_files

    with shared_data_dir() as data:
        elsewhere = os.path.join(os.path.dirname(data), "elsewhere")
        os.makedirs(os.path.join(elsewhere, "queue"))
        private = os.path.join(elsewhere, "queue", "private.json")
        with open(private, "w") as f:
            f.write("{}")
        os.chown(private, RECORDER, -1)
        os.chmod(private, 0o600)
        os.symlink(elsewhere, os.path.join(data, "mail"))
        assert as_user(RECORDER, lambda: share_own_files(str(data))) == 0
        assert oct(os.stat(private).st_mode & 0o777) == "0o600"


def test_off_the_appliance_root_s_secret_stays_the_owner_s_alone(tmp_path):
    """A data directory that is not the appliance's 2770 (here 0755): nothing is opened to
    its group, and a group-readable secret is refused as before."""
    from firmware.archive.queue import ArchiveError, read_secret, write_secret
    from firmware.secretbox import SecretBox

    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chown(data, RECORDER, 100)
    write_secret(str(data), "s3 secret", SecretBox(str(data), identity=b"t"))
    for name in ("archive.secret", "secrets.key"):
        assert oct(os.stat(data / name).st_mode & 0o777) == "0o600", name
    os.chmod(data / "archive.secret", 0o640)
    with pytest.raises(ArchiveError, match="readable by others: chmod 600"):
        read_secret(str(data), SecretBox(str(data), identity=b"t"))
