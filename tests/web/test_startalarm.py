"""While the recorder cannot start, the web UI tells the syslog server, once.

``recorder_start_failed`` is raised only by the start that works, and a mail goes only
when the web UI has opened the mail password (tests/mail/test_start_failure_mail.py):
syslog needs no secret."""

import errno
import os
import socket

from firmware import startfail
from firmware.control import ControlClient, ControlServer
from firmware.errors import StorageError
from firmware.mail.settings import MailSettings
from web.remote import services_for_recorder
from web.startalarm import AUDIT_ACTION, STATE_FILE

SINCE_US = 1_796_425_915_000_000  # 2026-12-04 23:11:55 UTC


def _listener():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    return receiver


def _lines(receiver):
    """Every datagram waiting on ``receiver`` (after the first, none waits: sent already)."""
    got = []
    receiver.settimeout(0.5)
    try:
        while True:
            got.append(receiver.recv(4096).decode())
    except TimeoutError:
        return got


def _web_ui(box, tmp_path):
    """The web UI's services beside the recorder's socket, as ``linekeeper web`` makes them."""
    client = ControlClient(str(tmp_path / "recorder.sock"), timeout_s=0.5)
    return services_for_recorder(box.data_dir, client, 3)


def test_a_recorder_that_cannot_start_is_told_to_syslog_once_and_cleared(box, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(run))
    receiver = _listener()
    remote = _web_ui(box, tmp_path)
    remote.mail.store.save(MailSettings(syslog="127.0.0.1:%d" % receiver.getsockname()[1]))
    remote.mail.syslog.hostname = "shop-box"
    server = None
    try:
        remote.mail.tick()  # down, and no start has failed: it may be restarting
        assert _lines(receiver) == []

        refused = StorageError(errno.EIO, "cannot open the data in /var/lib/linekeeper: an I/O error")
        startfail.record(str(run), refused, SINCE_US)
        remote.mail.tick()
        startfail.record(str(run), refused, SINCE_US + 30 * 10**6)
        remote.mail.tick()
        (raised,) = _lines(receiver)
        assert raised.startswith("<131>1 2026-12-04T23:11:55.000000Z shop-box linekeeper - alarm "), raised
        assert '[alarm@32473 kind="recorder_start_failed" line="0"]' in raised
        assert "cannot start" in raised and "(card; failing since 2026-12-04T23:11:55Z)" in raised
        assert "/var/lib" not in raised and "I/O" not in raised  # the class, not the reason's text

        # The web UI restarts: the line is not sent again.
        remote.mail.close()
        remote = _web_ui(box, tmp_path)
        remote.mail.syslog.hostname = "shop-box"
        remote.mail.tick()
        assert _lines(receiver) == []

        # The recorder starts (it removes the note and answers): one cleared line.
        startfail.clear(str(run))
        server = ControlServer(
            str(tmp_path / "recorder.sock"),
            {"health": lambda: {}, "wall_us": lambda: SINCE_US + 3600 * 10**6},
        )
        server.start()
        remote.mail.tick()
        remote.mail.tick()
        (cleared,) = _lines(receiver)
        assert '[alarm@32473 kind="recorder_start_failed" line="0"]' in cleared
        assert "has started again (card; failing since 2026-12-04T23:11:55Z)" in cleared
        entries = remote.audit.entries(action=AUDIT_ACTION, limit=5)
        assert sorted(e.details["state"] for e in entries) == ["cleared", "raised"]
    finally:
        if server is not None:
            server.stop()
        receiver.close()
        remote.mail.close()


def test_the_clock_set_while_it_fails_sends_no_line_again(box, tmp_path, monkeypatch):
    """The recorder notes its failures on the monotonic clock too, and each read dates them
    again by the wall clock as it is then: the same first failure reads a few microseconds
    apart from one round to the next, and hours apart once the network time arrives. It is
    the same failure all the same: one line, not a cleared and a raised one each round."""
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(run))
    receiver = _listener()
    remote = _web_ui(box, tmp_path)
    remote.mail.store.save(MailSettings(syslog="127.0.0.1:%d" % receiver.getsockname()[1]))
    try:
        wall_us, mono_us, _synced = startfail.clocks_now()
        startfail.record(str(run), StorageError(errno.EIO, "an I/O error"), wall_us, mono_us, False)
        remote.mail.tick()
        (raised,) = _lines(receiver)
        assert "cannot start" in raised

        # The network time arrives: the Pi's clock was three hours behind.
        real = startfail.clocks_now
        monkeypatch.setattr(
            startfail, "clocks_now", lambda: (lambda w, m, s: (w + 3 * 3600 * 10**6, m, True))(*real())
        )
        remote.mail.tick()
        remote.mail.tick()
        assert _lines(receiver) == []
        assert [e.details["state"] for e in remote.audit.entries(action=AUDIT_ACTION, limit=5)] == ["raised"]
    finally:
        receiver.close()
        remote.mail.close()


def test_no_syslog_server_set_sends_and_keeps_nothing(box, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(run))
    remote = _web_ui(box, tmp_path)
    try:
        startfail.record(str(run), StorageError(errno.EIO, "an I/O error"), SINCE_US)
        remote.mail.tick()
        assert not os.path.exists(os.path.join(box.data_dir, STATE_FILE))
        assert remote.audit.entries(action=AUDIT_ACTION, limit=5) == []
    finally:
        remote.mail.close()


def test_each_start_failure_falls_in_a_class_that_names_no_detail():
    from board.mcu.link import McuError
    from firmware.errors import HatError, RecoveryRefused
    from firmware.storage.fieldseal import FieldSealError

    assert startfail.cause(HatError("the HAT is an LK-4LB, config.json names an LK-2LB")) == "hat"
    assert startfail.cause(McuError("the MCU does not answer")) == "hardware"
    assert startfail.cause(FieldSealError("the MCU key vault did not give its storage key")) == "storage key"
    assert startfail.cause(StorageError(errno.EIO, "an I/O error")) == "card"
    assert startfail.cause(RecoveryRefused("no")) == "recovery"
    assert startfail.cause(RuntimeError("?")) == "other"
