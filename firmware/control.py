"""The recorder's control socket: the few things the web UI asks of the recorder.

The recorder and the web UI are separate processes (``linekeeper recorder`` and
``linekeeper web``). The web UI reads the call log, the audit trail and the
recordings from the data directory itself; what only the running recorder
knows or can do goes over this local Unix socket:

================ =========================================== =====================
operation        arguments                                   result
================ =========================================== =====================
``hello``        ``protocol`` (the client's version)         ``{"protocol", "pid", "lines", "board"}``
``snapshot``                                                 the live line status
``wait``         ``version``, ``timeout_s`` (≤ 30)           the status version now
``health``                                                   ``{"alarms", "alarm_lines",
                                                             "clock_synced"}`` (``alarm_lines``:
                                                             the line of each line's alarm,
                                                             :func:`~firmware.alarms.health_alarms`)
``wall_us``                                                  the box's clock, µs since the epoch
``pause``        ``line``, ``actor``, ``address`` (the web   null
                 client's, for the audit entry)
``resume``       ``line``, ``actor``, ``address``            null
``paused``                                                   lines paused now
``recording``                                                lines whose call is being recorded now
``test_call``    ``line``                                    seconds of announcement played (refused,
                                                             kind ``TestCallRefused``, unless a handset
                                                             is off-hook with nothing dialled)
``reload``                                                   null (config.json read again)
``retention``                                                ``{"suspended", "last_passed_us",``
                                                             ``"alarms", "disk_percent"}``
``confirm_clock`` ``actor``, ``address``                     null
``erase``        ``call_id``, ``actor``, ``reason``,         how many recordings were erased on
                 ``details`` (bool: the caller's details     request (refused: the reason why)
                 too), ``address``
``erase_details`` ``call_id``, ``actor``, ``reason``,        null: the caller's details erased
                 ``address``                                 from the call log (refused: why)
``update_state`` ``state``, ``message``, ``version``,        null (published on the bus as
                 ``previous_version``, ``install_wait_s``    :class:`~firmware.bus.UpdateState`)
``confirm_release`` ``actor``                                ``{"dropped", "sealed"}`` (the release
                                                             installed by hand is kept:
                                                             ``linekeeper update --confirm``)
``rekey``        ``user``, ``password`` (a slot that opens   ``{"summary", "recovery_key"}``: the
                 every line), ``actor`` (who asked),         new recovery key, returned only here
                 ``address``
``rekey_status``                                             ``{"running", "progress": [text]}``
``slot_tampered`` ``user``, ``failure`` ("closed",           null (a ``key_tampered`` alarm:
                 "inconsistent")                             the web found a right password
                                                             whose key slot failed)
================ =========================================== =====================

``address`` (optional in every operation that takes it) is the web client's,
which the audit entries the recorder writes for it carry, as the web UI's own
entries do; a caller that is not a page sends none, and its entries have none.

``rekey`` runs :meth:`firmware.box.Box.rekey` inside the recorder while it
records, and answers when it is done: call it with a long I/O timeout and
follow ``rekey_status`` on another connection. The password travels only over
this socket and is kept nowhere.

The protocol is newline-delimited JSON, one request and one answer at a time
per connection: ``{"v": 2, "op": ..., "args": {...}}`` answered by
``{"v": 2, "ok": true, "result": ...}`` or ``{"v": 2, "ok": false, "error":
"...", "kind": "..."}``. A request is at most :data:`MAX_MESSAGE` bytes.

Versions: 1, the first; 2 added the optional ``address`` (:data:`ADDED_ARGS`), which
the recorder of the release before version 2 already took under version 1 (the first
releases of version 1 did not).
The recorder serves every version from :data:`OLDEST_PROTOCOL` to
:data:`PROTOCOL` (an older web UI, or the updater of the release being replaced
checking the new recorder's health) and refuses any other with kind
``version`` and the versions it speaks (``"protocols": [oldest, newest]``; a
recorder of version 1 said only ``this recorder speaks control protocol version
1``), so that a web UI and a recorder from different releases never misread each
other. The recorder and the web UI are the same release but for a moment of an
update, or after one left half done (one service restarted on the new release,
the other not): then :class:`ControlClient`, refused, speaks the older recorder's
version on that connection, and says so (:attr:`ControlClient.recorder_protocol`;
the dashboard tells people to restart both). It sends the arguments a later
version added all the same, and leaves one out only once that recorder refuses
it as an argument it does not take (the address, to a first version 1 recorder:
the action is then carried out and audited, its entry without the address); a
recorder that took the address is sent it, and its entries keep it. A recorder
whose versions the client does not speak at all is refused with a message saying
the two are different releases.

Who may connect: the server checks each peer's credentials (``SO_PEERCRED``):
root, the recorder's own user, and the users of the socket's group (the web
UI's service user is in it). The socket file is mode 0660.
"""

import json
import logging
import os
import re
import socket
import struct
import threading

from .alarmlog import raise_slot_tampered
from .alarms import health_alarms
from .bus import UpdateState
from .config import load_config
from .errors import LinekeeperError
from .policy import announcement
from .policy.announcement import Announcements

log = logging.getLogger(__name__)

PROTOCOL = 2
# The oldest version the recorder still serves and the client still speaks.
OLDEST_PROTOCOL = 1
# The arguments each version added to operations an older one already had: sent to a
# recorder of an older version all the same (some took them already), and left out
# only once it refuses one as an argument it does not take (ControlClient.call).
ADDED_ARGS = {2: frozenset({"address"})}
MAX_MESSAGE = 64 * 1024
SOCKET_NAME = "control.sock"


class ControlError(LinekeeperError, ValueError):
    """The recorder refused a request (its message says why)."""

    def __init__(self, message, kind="error"):
        super().__init__(message)
        self.kind = kind


class RecorderUnavailable(LinekeeperError, ConnectionError):
    """The recorder is not running or does not answer (it may be restarting)."""


def socket_path(data_dir):
    return os.path.join(data_dir, SOCKET_NAME)


def peer_credentials(conn):
    """``(pid, uid, gid)`` of the process at the other end of a Unix socket."""
    data = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", data)


class ControlServer:
    """Serve ``handlers`` (``{op: fn(**args)}``) on a Unix socket at ``path``.

    :param group: a group id whose members may connect besides root and our own
        user (the web UI's); None: only root and our own user
    """

    def __init__(self, path, handlers, *, group=None):
        self.path = path
        self.handlers = dict(handlers)
        self.group = group
        self.refused = 0
        self._sock = None
        self._thread = None
        self._stopping = threading.Event()
        self._conns = set()
        self._lock = threading.Lock()

    def start(self):
        if self._sock is not None:
            raise RuntimeError("the control socket is already open")
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o117)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        # The services run with the shared group as their own (and the data dir is
        # setgid), so the socket usually has it already; chown is only for the rest
        # (the recorder's system-call filter refuses it).
        if self.group is not None and os.stat(self.path).st_gid != self.group:
            os.chown(self.path, -1, self.group)
        sock.listen(8)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, name="control", daemon=True)
        self._thread.start()

    def stop(self):
        if self._sock is None:
            return
        self._stopping.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self._sock = None

    def allowed(self, uid, gid):
        return uid in (0, os.getuid()) or (self.group is not None and gid == self.group)

    def _accept(self):
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            pid, uid, gid = peer_credentials(conn)
            if not self.allowed(uid, gid):
                self.refused += 1
                log.warning("control socket: refused pid %d (uid %d, gid %d)", pid, uid, gid)
                threading.Thread(target=self._refuse, args=(conn, uid), daemon=True).start()
                continue
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="control-conn", daemon=True).start()

    @staticmethod
    def _refuse(conn, uid):
        # Answer the peer's first request (so its client reads the refusal rather
        # than a broken pipe), then hang up.
        try:
            conn.settimeout(2)
            conn.makefile("rb").readline(MAX_MESSAGE + 1)
            _send(conn, _error("uid %d may not use the recorder's control socket" % uid, "forbidden"))
        except OSError:
            pass
        finally:
            conn.close()

    def _serve(self, conn):
        reader = conn.makefile("rb")
        try:
            while not self._stopping.is_set():
                line = reader.readline(MAX_MESSAGE + 1)
                if not line:
                    return
                if len(line) > MAX_MESSAGE:
                    _send(conn, _error("a request is at most %d bytes" % MAX_MESSAGE, "bad_request"))
                    return
                _send(conn, self._answer(line))
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            reader.close()
            conn.close()

    def _answer(self, line):
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return _error("a request must be one line of JSON", "bad_request")
        if not isinstance(request, dict) or not _spoken(request.get("v")):
            return _version_error()
        handler = self.handlers.get(request.get("op"))
        args = request.get("args", {})
        if handler is None or not isinstance(args, dict):
            return _error("unknown operation %r" % (request.get("op"),), "bad_request")
        try:
            return {"v": PROTOCOL, "ok": True, "result": handler(**args)}
        except TypeError as exc:
            return _error("bad arguments for %s: %s" % (request["op"], exc), "bad_request")
        except LinekeeperError as exc:
            return _error(str(exc), type(exc).__name__)
        except Exception:
            log.exception("control operation %s failed", request.get("op"))
            return _error("the recorder failed to carry out %s" % request.get("op"), "internal")


def _error(message, kind):
    return {"v": PROTOCOL, "ok": False, "error": message, "kind": kind}


def _spoken(version):
    """Whether the recorder serves requests of ``version``."""
    return type(version) is int and OLDEST_PROTOCOL <= version <= PROTOCOL


def _version_error():
    return dict(
        _error(
            "this recorder speaks control protocol versions %d to %d" % (OLDEST_PROTOCOL, PROTOCOL), "version"
        ),
        protocols=[OLDEST_PROTOCOL, PROTOCOL],
    )


def _their_newest(answer):
    """The newest version a recorder that refused a request's version speaks, from its
    answer (``protocols``; a recorder of version 1 named its one version only in its
    message), or None if it does not say."""
    spoken = answer.get("protocols")
    if isinstance(spoken, list) and spoken and all(type(v) is int for v in spoken):
        return max(spoken)
    match = re.fullmatch(r"this recorder speaks control protocol version (\d+)", str(answer.get("error", "")))
    return int(match.group(1)) if match else None


def releases_differ(theirs):
    """Why the client cannot speak to a recorder whose newest version is ``theirs``."""
    return (
        "the recorder and this program are different releases (the recorder speaks control "
        "protocol version %s, this program %d to %d): an update was not finished. Restart both "
        "(or the box), or run the update again" % (theirs or "unknown", OLDEST_PROTOCOL, PROTOCOL)
    )


def _send(conn, message):
    conn.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")


class ControlClient:
    """The web UI's end: one connection, re-made after the recorder restarts.

    Every call raises :class:`RecorderUnavailable` when the recorder does not
    answer within ``timeout_s`` (the UI shows that and tries again next time)
    and :class:`ControlError` when it refuses.
    """

    def __init__(self, path, timeout_s=5.0):
        self.path = path
        self.timeout_s = timeout_s
        # One connection per thread: a page waiting for news (``wait``) does not
        # hold up another page's request.
        self._local = threading.local()

    def close(self):
        """Close this thread's connection."""
        self._drop()

    def call(self, op, *, io_timeout_s=None, **args):
        """Carry out ``op`` with ``args``; its result.

        Spoken in :data:`PROTOCOL`, or in the older version of a recorder that refused
        it (the module's docstring): an argument of a later version it refuses as one it
        does not take is left out (:attr:`lacking`), and the request asked again.

        :raises RecorderUnavailable: no recorder answered within ``io_timeout_s``
        :raises ControlError: the recorder refused (``kind`` says how); ``version``: the
            recorder speaks no version this client does
        """
        version, answer = self._ask(op, args, io_timeout_s)
        if not answer.get("ok") and answer.get("kind") == "version" and version == PROTOCOL:
            theirs = _their_newest(answer)
            if theirs is None or not OLDEST_PROTOCOL <= theirs < PROTOCOL:
                raise ControlError(releases_differ(theirs), "version")
            log.warning(
                "the recorder speaks control protocol version %d, this program %d: an update was "
                "not finished; spoken in %d until the recorder restarts",
                theirs,
                PROTOCOL,
                theirs,
            )
            self._local.protocol = theirs
            version, answer = self._ask(op, args, io_timeout_s)
        while (lacking := _lacking(version, answer)) is not None and lacking not in self.lacking:
            log.warning(
                "the recorder (control protocol version %d) does not take %r: left out of the "
                "requests until it restarts",
                version,
                lacking,
            )
            self._local.lacking = self.lacking | {lacking}
            version, answer = self._ask(op, args, io_timeout_s)
        if not answer.get("ok"):
            raise ControlError(answer.get("error", "refused"), answer.get("kind", "error"))
        return answer.get("result")

    @property
    def recorder_protocol(self):
        """The older version this thread's connection speaks, its recorder having refused
        :data:`PROTOCOL`; None while it speaks :data:`PROTOCOL` (or has not been refused).
        Forgotten when the connection is (a recorder restarted may be the new release)."""
        return getattr(self._local, "protocol", None)

    @property
    def lacking(self):
        """The arguments of later versions (:data:`ADDED_ARGS`) this thread's recorder, of an
        older version, refused as arguments it does not take: left out of its requests.
        Forgotten with the connection."""
        return getattr(self._local, "lacking", None) or frozenset()

    def _ask(self, op, args, io_timeout_s):
        """Send one request, in the version this thread's connection speaks (``args``
        its recorder refused left out: :attr:`lacking`); ``(that version, the recorder's
        answer)``."""
        for attempt in (1, 2):
            try:
                if getattr(self._local, "sock", None) is None:
                    self._connect()
                self._local.sock.settimeout(io_timeout_s or self.timeout_s)
                version = self.recorder_protocol or PROTOCOL
                sent = {k: v for k, v in args.items() if k not in self.lacking}
                _send(self._local.sock, {"v": version, "op": op, "args": sent})
                line = self._local.reader.readline(MAX_MESSAGE + 1)
                if not line:
                    raise ConnectionResetError("the recorder closed the connection")
                break
            except OSError as exc:
                self._drop()
                # A connection left from before a recorder restart fails at once:
                # try once more on a new one.
                if attempt == 2 or isinstance(
                    exc, (socket.timeout, FileNotFoundError, ConnectionRefusedError)
                ):
                    raise RecorderUnavailable(
                        "the recorder is not answering (%s); it may be restarting" % exc
                    ) from exc
        return version, json.loads(line)

    def _connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self._local.sock = sock
        self._local.reader = sock.makefile("rb")

    def _drop(self):
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            self._local.reader.close()
            sock.close()
        self._local.sock = self._local.reader = self._local.protocol = self._local.lacking = None


def _lacking(version, answer):
    """The argument added after ``version`` (:data:`ADDED_ARGS`) that a recorder of that
    version refused in ``answer`` as one its operation does not take, or None."""
    if answer.get("ok") or answer.get("kind") != "bad_request":
        return None
    match = re.match(
        r"bad arguments for \S+: .*unexpected keyword argument '(\w+)'", str(answer.get("error"))
    )
    later = set().union(*(names for v, names in ADDED_ARGS.items() if v > version))
    return match.group(1) if match and match.group(1) in later else None


def recorder_handlers(box, *, board_name="sim"):
    """The operations of a running :class:`firmware.box.Box`, for :class:`ControlServer`."""

    def hello(protocol=PROTOCOL):
        if not _spoken(protocol):
            raise ControlError(
                "this recorder speaks control protocol versions %d to %d" % (OLDEST_PROTOCOL, PROTOCOL),
                "version",
            )
        return {"protocol": PROTOCOL, "pid": os.getpid(), "lines": box.board.lines, "board": board_name}

    def wait(version, timeout_s=15.0):
        box.status.wait_for_change(int(version), min(float(timeout_s), 30.0))
        return box.status.version

    def pause(line, actor, address=None):
        box.policy.pause(int(line), str(actor), address=_text(address))

    def resume(line, actor, address=None):
        box.policy.resume(int(line), str(actor), address=_text(address))

    def test_call(line):
        line = int(line)
        if not 1 <= line <= box.board.lines:
            raise ControlError("there is no line %d: this box has lines 1 to %d" % (line, box.board.lines))
        # The line's state as the supervisor has it now: the page's may be out of date.
        call = box.supervisor.live_call(line)
        refused = announcement.test_call_refusal(
            line, box.supervisor.state(line), None if call is None else call.number
        )
        if refused is not None:
            raise announcement.TestCallRefused(refused)
        announcements = Announcements(box.data_dir, box.config.country)
        samples = announcements.samples(load_config(box.data_dir).policy.consent.announcement)
        box.board.play(line, samples)
        return len(samples) / announcement.RATE

    def retention():
        sweeper = box.retention
        return {
            "suspended": sweeper.guard.suspended,
            "last_passed_us": sweeper.guard.last_passed_us,
            "alarms": list(sweeper.active_alarms()),
            "disk_percent": sweeper.last_disk_percent,
        }

    def update_state(state, message="", version=None, previous_version=None, install_wait_s=None):
        if install_wait_s is not None and not (
            type(install_wait_s) in (int, float) and 0 < install_wait_s < float("inf")
        ):
            raise ControlError(
                "install_wait_s must be a number of seconds above 0, not %r" % (install_wait_s,)
            )
        box.bus.publish(
            UpdateState(
                line=0,
                t_us=box.clock.now_us(),
                state=str(state),
                message=str(message),
                version=None if version is None else str(version),
                previous_version=None if previous_version is None else str(previous_version),
                install_wait_s=None if install_wait_s is None else float(install_wait_s),
            )
        )

    def confirm_release(actor):
        return box.confirm_release(str(actor))

    def rekey(user, password, actor, address=None):
        shown = []
        summary = box.rekey(str(user), str(password), str(actor), shown.append, address=_text(address))
        return {"summary": summary, "recovery_key": shown[0]}

    def rekey_status():
        return {"running": box.rekey_running, "progress": list(box.rekey_progress[-50:])}

    return {
        "hello": hello,
        "snapshot": box.status.snapshot,
        "wait": wait,
        "health": lambda: health_alarms(box.alarms) | {"clock_synced": bool(box.clock.synchronised)},
        "wall_us": box.clock.wall_us,
        "pause": pause,
        "resume": resume,
        "paused": lambda: list(box.policy.paused_lines()),
        "recording": lambda: list(box.policy.recording_lines()),
        "pausable": lambda: list(box.policy.pausable_lines()),
        "test_call": test_call,
        "reload": lambda: (box.reload_config(), None)[1],
        "retention": retention,
        "confirm_clock": lambda actor, address=None: box.retention.confirm_clock(
            str(actor), address=_text(address)
        ),
        "erase": lambda call_id, actor, reason, details=False, address=None: box.retention.erase(
            int(call_id), str(actor), str(reason), details=bool(details), address=_text(address)
        ),
        "erase_details": lambda call_id, actor, reason, address=None: box.retention.erase_details(
            int(call_id), str(actor), str(reason), address=_text(address)
        ),
        "update_state": update_state,
        "confirm_release": confirm_release,
        "rekey": rekey,
        "rekey_status": rekey_status,
        "slot_tampered": lambda user, failure: raise_slot_tampered(
            box.alarm_log, user, failure, box.clock.wall_us()
        ),
    }


def _text(value):
    """An optional text argument (the web client's ``address``): None if not sent."""
    return None if value is None else str(value)
