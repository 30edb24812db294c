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


@pytest.mark.parametrize("trail", [True, False])
@pytest.mark.parametrize("syslog", [True, False])
def test_a_refused_subject_access_release_is_one_line_on_the_terminal(tmp_path, syslog, trail):
    """Every `sar` refusal printed a timestamped log line (`... linekeeper.sar: subject access
    release by admin refused: X`), then `linekeeper: X`. Without a system log it still did,
    as if nothing else kept it: the command's own line says it, and the trail keeps it."""
    from firmware.storage.keystore import Argon2Params, KeyStore

    from support.cli import secret_file

    data = tmp_path / "box"
    data.mkdir()
    store = KeyStore(str(data), Argon2Params(memory_kib=8, iterations=1))
    store.initialise("admin", "correct horse battery 7")
    if trail:  # the refusal audited too; without a trail (a wrong --data-dir), logged only
        from firmware.signing import load_signer
        from firmware.storage.audit import open_audit

        open_audit(str(data), signer=load_signer(str(data))).close()  # the key the recorder makes
    password = secret_file(tmp_path, "pw", "correct horse battery 7")
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}  # as at a terminal
    address = _syslog_socket(tmp_path) if syslog else str(tmp_path / "no-syslog")
    run = (
        "import sys; from firmware import cli, logwhere; logwhere.SYSLOG_ADDRESS = %r; "
        "sys.exit(cli.main(sys.argv[1:]))" % address
    )
    done = subprocess.run(
        [sys.executable, "-c", run, "sar", "--data-dir", str(data),
         "--password-file", str(password), "--requester", "Joe_Bloggs", "--recipient", "Joe_Bloggs",
         "--reason", "subject_access_request", "--number", "abc", "--out", str(tmp_path / "s.zip")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines == ["linekeeper: no call log in %s" % data], done.stderr
    if syslog:  # the system log still keeps it
        _SOCKETS[-1].setblocking(False)
        logged = []
        while True:
            try:
                logged.append(_SOCKETS[-1].recv(4096).decode())
            except BlockingIOError:
                break
        refused = "subject access release by admin refused: no call log in %s" % data
        assert any(refused in record for record in logged), logged


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
    # No system log: its warnings and errors, which would be lost otherwise.
    assert _handlers(argv, str(tmp_path / "no-syslog")) == ([logging.WARNING], 0)


@pytest.mark.parametrize("syslog", ["missing", "not a socket"])
def test_without_a_system_log_a_persons_command_shows_its_warnings(tmp_path, monkeypatch, capsys, syslog):
    """A development machine has no /dev/log (or one that takes nothing): a person's
    command showed its errors on stderr but dropped its warnings (a recording it skipped,
    a key it could not check), which no system log kept either. They are shown; what
    is logged below a warning is not, as with a system log."""
    from firmware import logwhere

    address = tmp_path / "log"
    if syslog == "not a socket":
        address.write_text("")
    monkeypatch.setattr(logwhere, "SYSLOG_ADDRESS", str(address))
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    logwhere.configure(build_parser().parse_args(["verify", "--data-dir", "d"]))
    added = list(root.handlers)
    try:
        logging.getLogger("linekeeper.test").info("an info record")
        logging.getLogger("linekeeper.test").warning("a warning record")
        logging.getLogger("linekeeper.test").error("an error record")
    finally:
        for handler in added:
            root.removeHandler(handler)
            handler.close()
    err = capsys.readouterr().err
    assert "linekeeper.test: a warning record" in err and "linekeeper.test: an error record" in err
    assert "an info record" not in err


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
