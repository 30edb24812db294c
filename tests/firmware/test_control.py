"""The recorder's control socket: protocol, versions, peer credentials, reconnects."""

import json
import os
import shutil
import socket
import tempfile

import pytest

from firmware.control import (
    MAX_MESSAGE,
    PROTOCOL,
    ControlClient,
    ControlError,
    ControlServer,
    RecorderUnavailable,
)
from firmware.errors import LinekeeperError

from support.oldrecorder import OldRecorder


def echo_handlers():
    def fail():
        raise LinekeeperError("line 3 is not paused")

    def crash():
        raise RuntimeError("boom")

    return {"echo": lambda **kw: kw, "fail": fail, "crash": crash}


@pytest.fixture
def server(tmp_path):
    srv = ControlServer(str(tmp_path / "control.sock"), echo_handlers())
    srv.start()
    yield srv
    srv.stop()


def raw(path, payload):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(payload)
        return json.loads(s.makefile("rb").readline())


def test_round_trip_and_the_socket_is_private(server):
    client = ControlClient(server.path)
    assert client.call("echo", line=2, actor="sup") == {"line": 2, "actor": "sup"}
    assert oct(os.stat(server.path).st_mode & 0o777) == "0o660"


def test_refusals_carry_their_message_and_kind(server):
    client = ControlClient(server.path)
    with pytest.raises(ControlError, match="line 3 is not paused") as info:
        client.call("fail")
    assert info.value.kind == "LinekeeperError"
    assert isinstance(info.value, ValueError)  # the pages treat it as a refusal
    with pytest.raises(ControlError, match="unknown operation 'nope'"):
        client.call("nope")
    with pytest.raises(ControlError, match="failed to carry out crash") as info:
        client.call("crash")
    assert info.value.kind == "internal"
    assert client.call("echo") == {}  # the connection survives all of that


def test_another_protocol_version_and_garbage_are_refused(server):
    answer = raw(server.path, json.dumps({"v": PROTOCOL + 1, "op": "echo"}).encode() + b"\n")
    assert answer == {
        "v": PROTOCOL,
        "ok": False,
        "kind": "version",
        "error": "this recorder speaks control protocol versions 1 to 2",
        "protocols": [1, 2],
    }
    assert raw(server.path, json.dumps({"v": "2", "op": "echo"}).encode() + b"\n")["kind"] == "version"
    assert raw(server.path, b"{not json\n")["kind"] == "bad_request"
    assert raw(server.path, b"x" * (MAX_MESSAGE + 10) + b"\n")["error"].startswith("a request is at most")
    assert (
        raw(server.path, json.dumps({"v": 1, "op": "echo", "args": [1]}).encode() + b"\n")["kind"]
        == "bad_request"
    )


def test_a_recorder_of_an_older_release_is_spoken_to_in_its_version(tmp_path, caplog):
    """An update left half done: the web UI on the new release (which sends ``address``),
    the recorder still on a first release of version 1 (no ``address``). Every request
    was refused ("speaks control protocol version 1"), or, with the version not raised, a
    PCI pause was refused as "bad arguments for pause: ... unexpected keyword argument
    'address'" and the card details were recorded. The client now speaks the recorder's
    version, leaves out the argument it refuses, and says so."""
    paused = []

    def pause(line, actor):
        paused.append((line, actor))

    old = OldRecorder(str(tmp_path / "control.sock"), {"pause": pause, "echo": lambda **kw: kw})
    old.start()
    try:
        client = ControlClient(old.path)
        assert client.recorder_protocol is None
        assert client.call("pause", line=1, actor="sup1", address="192.0.2.44") is None
        assert paused == [(1, "sup1")] and client.recorder_protocol == 1
        assert "the recorder speaks control protocol version 1, this program 2" in caplog.text
        assert client.call("echo", n=1, address="192.0.2.44") == {"n": 1}  # at once in its version
        assert [(v, op, sorted(args)) for v, op, args in old.asked] == [
            (2, "pause", ["actor", "address", "line"]),
            (1, "pause", ["actor", "address", "line"]),
            (1, "pause", ["actor", "line"]),
            (1, "echo", ["n"]),
        ]
        assert "does not take 'address'" in caplog.text
    finally:
        old.stop()
    # A restarted recorder may be the new release: spoken to in this one's again.
    new = ControlServer(old.path, echo_handlers())
    new.start()
    try:
        assert client.call("echo", n=2, address="192.0.2.45") == {"n": 2, "address": "192.0.2.45"}
        assert client.recorder_protocol is None
    finally:
        new.stop()


def test_a_version_1_recorder_that_takes_the_address_is_sent_it(tmp_path):
    """The recorder of the release before version 2 (8f95689) took ``address`` under version
    1 and audited it: the client of the new release, speaking version 1 to it, left it out,
    and a pause during an update left half done was audited with no address."""
    paused = []

    def pause(line, actor, address=None):
        paused.append((line, actor, address))

    old = OldRecorder(str(tmp_path / "control.sock"), {"pause": pause})
    old.start()
    try:
        client = ControlClient(old.path)
        assert client.call("pause", line=1, actor="sup1", address="192.0.2.44") is None
        assert paused == [(1, "sup1", "192.0.2.44")] and client.recorder_protocol == 1
        assert [v for v, _, _ in old.asked] == [2, 1] and client.lacking == frozenset()
    finally:
        old.stop()


def test_a_version_1_recorder_refusing_an_argument_of_its_own_is_not_asked_again(tmp_path):
    """Only an argument of a later version that the recorder says it does not take is left out:
    a request refused for any other argument is refused, not asked again without it."""
    old = OldRecorder(str(tmp_path / "control.sock"), {"pause": lambda line, actor: None})
    old.start()
    try:
        with pytest.raises(ControlError, match="unexpected keyword argument 'who'"):
            ControlClient(old.path).call("pause", line=1, actor="sup1", who="x")
        assert [v for v, _, _ in old.asked] == [2, 1]
    finally:
        old.stop()


class NewerRecorder(ControlServer):
    """A recorder of a later release that no longer serves this one's versions."""

    def _answer(self, line):
        return {
            "v": 6,
            "ok": False,
            "error": "this recorder speaks control protocol versions 5 to 6",
            "kind": "version",
            "protocols": [5, 6],
        }


def test_a_recorder_of_a_version_this_program_does_not_speak_is_named_plainly(tmp_path):
    newer = NewerRecorder(str(tmp_path / "control.sock"), {})
    newer.start()
    try:
        with pytest.raises(ControlError) as refused:
            ControlClient(newer.path).call("snapshot")
    finally:
        newer.stop()
    assert refused.value.kind == "version"
    assert str(refused.value).startswith(
        "the recorder and this program are different releases (the recorder speaks control protocol "
        "version 6, this program 1 to 2): an update was not finished. Restart both"
    )


def test_a_client_of_an_older_release_is_served(server):
    """The updater of the release being replaced checks the new recorder's health in
    version 1, as an older web UI asks: both are served."""
    answer = raw(server.path, json.dumps({"v": 1, "op": "echo", "args": {"n": 1}}).encode() + b"\n")
    assert answer == {"v": PROTOCOL, "ok": True, "result": {"n": 1}}


def test_peers_of_another_user_are_refused():
    # A directory user nobody can reach (pytest's tmp_path is private to root), and a
    # socket mode past which the credential check alone decides.
    where = tempfile.mkdtemp(prefix="lk-control-")
    os.chmod(where, 0o755)
    server = ControlServer(os.path.join(where, "control.sock"), echo_handlers())
    server.start()
    try:
        os.chmod(server.path, 0o666)
        answer = _as_nobody(lambda: raw(server.path, json.dumps({"v": 1, "op": "echo"}).encode() + b"\n"))
    finally:
        server.stop()
        shutil.rmtree(where)
    assert answer["kind"] == "forbidden" and "uid 65534 may not use" in answer["error"]
    assert server.refused == 1


def _as_nobody(fn):
    """``fn()``'s JSON-able result, run in a child process of user nobody."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            os.write(write, json.dumps(fn()).encode())
        except BaseException as exc:
            os.write(write, json.dumps({"child_error": repr(exc)}).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as f:
        return json.loads(f.read())


def test_group_members_are_let_in(tmp_path):
    srv = ControlServer(str(tmp_path / "g.sock"), echo_handlers(), group=65534)
    assert srv.allowed(65534, 65534) and srv.allowed(0, 0) and not srv.allowed(65534, 1000)


def test_no_recorder_is_unavailable_and_a_restart_is_picked_up(tmp_path):
    path = str(tmp_path / "control.sock")
    client = ControlClient(path, timeout_s=1)
    with pytest.raises(RecorderUnavailable, match="may be restarting"):
        client.call("echo")
    first = ControlServer(path, echo_handlers())
    first.start()
    assert client.call("echo", n=1) == {"n": 1}
    first.stop()
    with pytest.raises(RecorderUnavailable):
        client.call("echo")
    second = ControlServer(path, echo_handlers())
    second.start()
    try:
        assert client.call("echo", n=2) == {"n": 2}
    finally:
        second.stop()
    assert not os.path.exists(path)


def test_recorder_handlers_pause_a_real_call(tmp_path, synth):
    """Through the socket, on a simulated box mid-call."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box
    from firmware.control import recorder_handlers

    scenario = loads_scenario(
        json.dumps(
            {
                "start": "2026-03-02T09:00:00Z",
                "country": "uk",
                "lines": 2,
                "calls": [{"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 20.0}],
            }
        )
    )
    from firmware.storage.keystore import Argon2Params, KeyStore

    KeyStore(str(tmp_path / "data"), kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise(
        "sup1", "correct horse battery 7"
    )
    box = open_sim_box(scenario, str(tmp_path / "data"), synth=synth)
    srv = ControlServer(str(tmp_path / "c.sock"), recorder_handlers(box, board_name="sim"))
    srv.start()
    box.start()
    try:
        client = ControlClient(srv.path)
        hello = client.call("hello", protocol=PROTOCOL)
        assert hello["lines"] == 2 and hello["board"] == "sim" and hello["pid"] == os.getpid()
        assert client.call("hello", protocol=1)["protocol"] == PROTOCOL  # an older updater's
        with pytest.raises(ControlError, match="protocol versions 1 to 2"):
            client.call("hello", protocol=9)
        box.clock.run_until(12_000_000)
        snap = client.call("snapshot")
        assert snap["lines"][0]["call"]["direction"] == "in"
        assert client.call("wall_us") == box.clock.wall_us()
        # The web UI's client address goes into the box's audit entries (as into its own).
        client.call("pause", line=1, actor="sup1", address="192.0.2.44")
        assert client.call("paused") == [1] and client.call("recording") == [1]
        with pytest.raises(ControlError):
            client.call("pause", line=2, actor="sup1")  # no call there
        client.call("resume", line=1, actor="sup1", address="192.0.2.45")
        assert client.call("paused") == []
        box.clock.run_until(13_000_000)  # the resume is audited once the capture dates it
        (paused,) = box.audit.entries(action="pause")
        (resumed,) = box.audit.entries(action="resume")
        assert (paused.actor, paused.details["address"]) == ("sup1", "192.0.2.44")
        assert (resumed.actor, resumed.details["address"]) == ("sup1", "192.0.2.45")
        assert client.call("health")["clock_synced"] is True
        assert set(client.call("retention")) == {"suspended", "last_passed_us", "alarms", "disk_percent"}
        assert box.board.run()
    finally:
        srv.stop()
        box.stop()


def test_recorder_plays_a_test_announcement_only_into_a_handset_lifted_with_nothing_dialled(tmp_path, synth):
    """The recorder, which knows each line's state, refuses a test call into a call, a
    ringing line, a number being dialled or an idle line, whatever the page asked."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box
    from firmware.control import recorder_handlers

    scenario = loads_scenario(
        json.dumps(
            {
                "start": "2026-03-02T09:00:00Z",
                "country": "uk",
                "lines": 3,
                "calls": [
                    {"line": 1, "at": 1.0, "direction": "in", "rings": 2, "talk": 20.0},
                    {
                        "line": 2,
                        "at": 1.0,
                        "direction": "out",
                        "dial": {"digits": "02079460000", "delay": 10.0},
                    },
                ],
            }
        )
    )
    box = open_sim_box(scenario, str(tmp_path / "data"), synth=synth)
    srv = ControlServer(str(tmp_path / "c.sock"), recorder_handlers(box, board_name="sim"))
    srv.start()
    box.start()

    def plays(line):
        return [e for e in box.board.log if e[1:3] == (line, "play")]

    try:
        client = ControlClient(srv.path)
        box.clock.run_until(5_000_000)  # line 1 ringing, line 2 lifted with its dial tone
        assert client.call("snapshot")["lines"][0]["state"] == "ringing"
        with pytest.raises(ControlError, match="^line 1 is in a call: try again when it is free$") as refused:
            client.call("test_call", line=1)
        assert refused.value.kind == "TestCallRefused"
        with pytest.raises(ControlError, match="nobody is off-hook on line 3"):
            client.call("test_call", line=3)
        with pytest.raises(ControlError, match="there is no line 4"):
            client.call("test_call", line=4)
        assert plays(1) == plays(3) == []
        seconds = client.call("test_call", line=2)
        assert seconds >= 1.0 and len(plays(2)) == 1
        box.clock.run_until(14_000_000)  # line 1 answered, line 2's number dialled
        for line in (1, 2):
            with pytest.raises(ControlError, match="^line %d is in a call" % line):
                client.call("test_call", line=line)
        assert len(plays(2)) == 1 and plays(1) == [e for e in plays(1) if e[0] > 5_000_000]
    finally:
        srv.stop()
        box.stop()
