"""Alarms to a syslog server over UDP, as RFC 5424 messages."""

import socket

import pytest

from firmware.alarmlog import AlarmLog
from firmware.errors import ConfigError
from firmware.mail.service import MailService
from firmware.mail.settings import MailSettings
from firmware.secretbox import SecretBox


class Clock:
    t = 1_772_452_800_000_000  # 2026-03-02T12:00:00Z

    def wall_us(self):
        return self.t


def test_an_alarm_reaches_syslog(tmp_path):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    receiver.settimeout(5)
    clock = Clock()
    alarms = AlarmLog(tmp_path / "alarms.db", clock)
    mail = MailService(str(tmp_path), clock.wall_us, SecretBox(str(tmp_path), b"t"), alarm_log=alarms)
    mail.syslog.hostname = "shop-box"
    mail.store.save(MailSettings(syslog="127.0.0.1:%d" % port))
    try:
        alarms.set("no_line_voltage", True, line=2, message="no line voltage")
        data = receiver.recv(2048).decode()
    finally:
        receiver.close()
        alarms.close()
    assert data == (
        "<131>1 2026-03-02T12:00:00.000000Z shop-box linekeeper - alarm "
        '[alarm@32473 kind="no_line_voltage" line="2"] no line voltage'
    )


def test_no_syslog_and_a_bad_setting(tmp_path):
    clock = Clock()
    alarms = AlarmLog(tmp_path / "alarms.db", clock)
    MailService(str(tmp_path), clock.wall_us, SecretBox(str(tmp_path), b"t"), alarm_log=alarms)
    assert alarms.set("disk_warning", True) is not None  # nothing set: nothing sent
    alarms.close()
    with pytest.raises(ConfigError, match="mail.syslog: 'log host:99999' is not a host"):
        MailSettings(syslog="log host:99999").check()


def test_a_staff_concern_goes_to_syslog_without_its_words_and_grave_alarms_as_errors():
    """A concern's text (which may name a caller and their number) went out in clear UDP
    to the log server; and a failed start or a replaced key, with calls unrecorded, went
    as warnings while a dead line was an error."""
    from firmware.mail.syslog import message

    def row(kind, text=""):
        return {"kind": kind, "line": 0, "message": text, "raised_us": Clock.t}

    concern = message(row("staff_concern", "from sam: caller Jane Doe on 07700 900123")).decode()
    assert "Jane" not in concern and "07700" not in concern and "read it on the box" in concern
    for kind in ("recorder_start_failed", "key_tampered", "no_line_voltage", "call_log"):
        assert message(row(kind)).startswith(b"<131>"), kind  # local0.err
    assert message(row("disk_warning")).startswith(b"<132>")  # local0.warning
