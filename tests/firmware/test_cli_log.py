"""Where the `linekeeper` command's log goes: a service's on stderr (the journal), a
person's command's to the system log, never doubling the command's own one-line message."""

import logging
import os
import socket
import subprocess
import sys

import pytest

from firmware.cli import build_parser
from firmware.logwhere import log_handlers, stderr_is_journal


def _handlers(argv, syslog_address):
    """``(stderr, others)``: the levels of the handlers writing to stderr, and how many others."""
    handlers = log_handlers(build_parser().parse_args(argv), syslog_address=syslog_address)
    for handler in handlers:
        handler.close()
    stderr = [h.level for h in handlers if type(h) is logging.StreamHandler]
    return stderr, len(handlers) - len(stderr)


def test_a_refused_subject_access_release_is_one_line_on_the_terminal(tmp_path):
    """Every `sar` refusal printed a timestamped log line (`... linekeeper.sar: subject access
    release by admin refused: X`), then `linekeeper: X`."""
    from firmware.storage.keystore import Argon2Params, KeyStore

    from support.cli import secret_file

    data = tmp_path / "box"
    data.mkdir()
    store = KeyStore(str(data), Argon2Params(memory_kib=8, iterations=1))
    store.initialise("admin", "correct horse battery 7")
    password = secret_file(tmp_path, "pw", "correct horse battery 7")
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}  # as at a terminal
    done = subprocess.run(
        [sys.executable, "-m", "firmware.cli", "sar", "--data-dir", str(data),
         "--password-file", str(password), "--requester", "Joe_Bloggs", "--recipient", "Joe_Bloggs",
         "--reason", "subject_access_request", "--number", "abc", "--out", str(tmp_path / "s.zip")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines == ["linekeeper: no call log in %s" % data], done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--data-dir", "d"],
        ["recorder", "--data-dir", "d"],
        ["web", "--data-dir", "d"],
        ["banner", "--data-dir", "d"],
        ["sim", "demo", "--data-dir", "d"],
        ["update", "--watch", "inbox", "--data-dir", "d"],
        ["update", "--recover", "--data-dir", "d"],
    ],
)
def test_a_service_logs_everything_on_stderr_as_before(argv, tmp_path):
    """The daemons' stderr is the journal: their log must not be lost."""
    assert _handlers(argv, str(tmp_path / "no-syslog")) == ([logging.NOTSET], 0)
    assert _handlers(argv, _syslog_socket(tmp_path)) == ([logging.NOTSET], 0)


@pytest.mark.parametrize(
    "argv",
    [
        ["sar", "--data-dir", "d", "--password-file", "pw", "--requester", "a", "--recipient", "a",
         "--reason", "subject_access_request", "--out", "s.zip"],
        ["update", "junk.raucb", "--data-dir", "d"],
        ["verify", "--data-dir", "d"],
    ],
)  # fmt: skip
def test_a_persons_command_logs_to_the_system_log_not_the_terminal(argv, tmp_path):
    assert _handlers(argv, _syslog_socket(tmp_path)) == ([], 1)
    assert _handlers(["-v", *argv], _syslog_socket(tmp_path)) == ([logging.NOTSET], 1)
    # No system log: its errors only, its warnings being in its own message.
    assert _handlers(argv, str(tmp_path / "no-syslog")) == ([logging.ERROR], 0)


def test_a_command_a_unit_runs_logs_on_stderr_which_is_the_journal(tmp_path):
    with open(tmp_path / "journal", "w") as stream:
        st = os.fstat(stream.fileno())
        assert stderr_is_journal({"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}, stream)
        assert not stderr_is_journal({"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino + 1)}, stream)
        assert not stderr_is_journal({}, stream)


_SOCKETS = []


def _syslog_socket(tmp_path):
    """A Unix datagram socket standing in for the system log: its path."""
    path = str(tmp_path / ("log%d" % len(_SOCKETS)))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    _SOCKETS.append(sock)
    return path


@pytest.fixture(autouse=True)
def _close_sockets():
    yield
    while _SOCKETS:
        _SOCKETS.pop().close()
