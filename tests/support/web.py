"""Helpers of the web tests: fakes of the box's status and recordings, a web app around a small box."""

import functools
import io
import math
import os
import re
import shutil
import sqlite3
import struct
import threading

from firmware.alarmlog import AlarmLog
from firmware.calls.calllog import SCHEMA, CallLog
from firmware.calls.callsearch import CallSearch, ensure_indexes
from firmware.clock import SimClock
from firmware.mail.service import MailService
from firmware.policy.callmeta import CallMeta
from firmware.policy.sweeper import RetentionSweeper
from firmware.recording.store import RecordingStore
from firmware.reports.source import ReportSource
from firmware.secretbox import SecretBox
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import Argon2Params, KeyStore
from firmware.update.inbox import UpdateInbox
from web import Services, WebConfig, create_app
from web.passwords import CHEAP_COST
from web.services import BoxConfigStore, BoxConsent
from web.setupcode import setup_code_for

T0_US = 1_772_442_000_000_000  # 2026-03-02T09:00:00Z


S = 1_000_000


def add_calls(data_dir, numbers, line=1, direction="in"):
    """Calls on ``line`` written straight into ``data_dir``'s call log, one per number, an
    hour apart from three hours after :data:`T0_US`, 20 s each, unanswered (an inbound one is a
    missed call that was never called back): what the report and breach-scope tests count."""
    db = sqlite3.connect(os.path.join(str(data_dir), "calls.db"))
    with db:
        for k, number in enumerate(numbers):
            start = T0_US + (3 + k) * 3600 * S
            db.execute(
                "INSERT INTO calls (line, direction, started_at, ended_at, clock_synced, number)"
                " VALUES (?, ?, ?, ?, 1, ?)",
                (line, direction, start, start + 20 * S, number),
            )
    db.close()


LINES = 4


ADMIN = ("alice", "correct horse battery 7")


PASSWORDS = {
    "alice": ADMIN[1],
    "ivan": "installer only pass 7",
    "sam": "supervisor pass one 7",
    "sue": "supervisor pass two 7",
    "audrey": "auditor pass word 7",
    "stella": "staff member pass 7",
}


class FakeClock:
    """Session time for tests: moves only when told to."""

    def __init__(self, t_us=T0_US):
        self.t_us = t_us

    def __call__(self):
        return self.t_us

    def advance(self, seconds):
        self.t_us += int(seconds * S)


class FakeStatus:
    """LineStatus's interface; tests change states with :meth:`set`."""

    def __init__(self, lines=LINES):
        self._cond = threading.Condition()
        self.version = 0
        self._lines = {
            n: {"line": n, "state": "idle", "since": None, "call": None, "faults": []}
            for n in range(1, lines + 1)
        }

    def set(self, line, state, call=None):
        with self._cond:
            self._lines[line].update(state=state, call=call)
            self.version += 1
            self._cond.notify_all()

    def snapshot(self):
        with self._cond:
            return {
                "version": self.version,
                "now": "2026-03-02T09:00:00.000Z",
                "clock_synced": True,
                "lines": [dict(e, faults=list(e["faults"])) for e in self._lines.values()],
            }

    def wait_for_change(self, version, timeout_s):
        with self._cond:
            self._cond.wait_for(lambda: self.version != version, timeout_s)
            return self.version


@functools.cache
def wav_bytes(seconds, rate=8000):
    """A mono 16-bit WAV of a 440 Hz tone lasting ``seconds`` (made once per length:
    every web test's fake recordings hold the same few tones)."""
    n = int(seconds * rate)
    samples = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(n)
    )
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + len(samples))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", len(samples))
    )
    return header + samples


class FakeRecordings:
    """RecordingService over in-memory WAV files; records the keys it was given.

    ``wall_us``: the clock a hold is stamped with (the web's, as the box's is)."""

    def __init__(self, wall_us=lambda: T0_US):
        self.audio = {}
        self.held = set()
        self.holds = {}  # call id: (placed at, placed by), as the hold table keeps them
        self._wall_us = wall_us
        self.keys_seen = []
        self.exports = []

    def add(self, call_id, seconds):
        self.audio[call_id] = wav_bytes(seconds)
        self.durations = getattr(self, "durations", {})
        self.durations[call_id] = seconds

    def recording_info(self, call_id):
        if call_id not in self.audio:
            return None
        return {
            "state": "complete",
            "duration_s": self.durations[call_id],
            "mime_type": "audio/wav",
            "size": len(self.audio[call_id]),
            "legal_hold": call_id in self.held,
            "legal_hold_since": self.holds[call_id][0] if call_id in self.held else None,
            "legal_hold_by": self.holds[call_id][1] if call_id in self.held else None,
        }

    def damaged(self, call_id):
        return None

    def open_audio(self, call_id, recording_key):
        assert not recording_key.forgotten
        self.keys_seen.append(recording_key)
        return io.BytesIO(self.audio[call_id])

    def export(self, call_id, recording_key, fmt):
        self.exports.append((call_id, fmt))
        return self.audio[call_id]

    def export_manifest(self, call_id, payload, file_name, user):
        return b'{"fake manifest of %s by %s"}' % (file_name.encode(), user.encode())

    def set_legal_hold(self, call_id, on, by=""):
        if on and call_id not in self.held:  # placed once: a hold keeps when and by whom
            self.holds[call_id] = (self._wall_us(), by or "web")
        (self.held.add if on else self.held.discard)(call_id)


def make_calls_db(path, n=40):
    """``n`` calls over lines 1-4, a minute apart; call k is on line 1 + (k-1) % 4."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    rows = []
    for i in range(n):
        start = T0_US + i * 60 * S
        rows.append(
            (
                1 + i % LINES,
                "in" if i % 2 == 0 else "out",
                start,
                start + 5 * S,
                start + 35 * S,
                1,
                "0207946%04d" % i,
            )
        )
    db.executemany(
        "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, "
        "clock_synced, number) VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.commit()
    db.close()
    ensure_indexes(path)


class Box:
    """A web app around a simulated box's parts, with helpers to drive it."""

    PASSWORDS = PASSWORDS
    ADMIN = ADMIN
    LINES = LINES
    T0_US = T0_US

    def __init__(self, tmp_path, *, data_from=None, cipher=None, **config):
        data = tmp_path / "data"
        if data_from is None:
            data.mkdir()
            make_calls_db(data / "calls.db")
        else:
            # A copy of a closed box's data directory (SQLite rebuilds the
            # shared-memory index of each write-ahead log from the log itself).
            shutil.copytree(data_from, data, ignore=shutil.ignore_patterns("*-shm"))
        self.data_dir = str(data)
        self.clock = FakeClock()
        self.recordings = FakeRecordings(lambda: self.clock.t_us)
        for call_id in range(1, 9):
            self.recordings.add(call_id, 3.0)
        self.status = FakeStatus()
        # Retention runs on the real sweeper over the same calls.db, on a simulated
        # clock 40 days after the calls (which have no recording rows until a test
        # adds some with add_recordings).
        self.box_clock = SimClock(start_wall_us=T0_US + 40 * 86400 * S)
        self.store = RecordingStore(self.data_dir)
        self.audit = AuditLog(data / "audit.db", data / "audit.head")
        # ``cipher``: a field cipher, as on a box whose HAT has the MCU (web.db, the
        # rules and the mail queue sealed); None as on a box without it.
        self.cipher = cipher
        self.config_store = BoxConfigStore(self.data_dir, self._applied, cipher)
        self.applied = []
        self.played = []
        # The call log's writer: it erases a caller's details on request (through the sweeper).
        self.calllog = CallLog(data / "calls.db", self.box_clock, cipher=cipher)
        self.sweeper = RetentionSweeper(
            self.store,
            self.box_clock,
            self.audit,
            self.config_store.get().policy.retention,
            disk_usage=lambda path: (100, 50, 50),
            call_log=self.calllog,
        )
        self.sweeper.guard.passed(self.box_clock.wall_us())
        self.services = Services(
            status=self.status,
            calls=CallSearch(data / "calls.db"),
            keystore=KeyStore(data, Argon2Params(memory_kib=8, iterations=1)),
            audit=self.audit,
            recordings=self.recordings,
            retention=self.sweeper,
            box_config=self.config_store,
            consent=BoxConsent(self.data_dir, self.config_store, self._play),
            call_tags=CallMeta(str(data / "calls.db")),
            health=lambda: {
                "disk_free_bytes": 10**9,
                "disk_total_bytes": 4 * 10**9,
                "clock_synced": True,
                "alarms": [],
            },
            wall_us=lambda: self.clock.t_us,
            session_clock_us=self.clock,
            cert_fingerprint="AB:CD",
            reports=None,
            alarms=None,
            updates=UpdateInbox(self.data_dir, slot_info=str(data / "linekeeper-slot.json")),
            cipher=cipher,
        )
        self.alarm_log = AlarmLog(data / "alarms.db", self.services, self.audit, cipher)
        self.services.alarms = self.alarm_log
        self.services.reports = ReportSource(self.data_dir, n_lines=LINES, alarms=self.alarm_log)
        self.services.mail = MailService(
            self.data_dir,
            self.services.wall_us,
            SecretBox(self.data_dir, identity=b"test"),
            reports=self.services.reports,
            alarm_log=self.alarm_log,
            cipher=cipher,
        )
        config.setdefault("sse_timeout_s", 0.5)
        self.config = WebConfig(data_dir=self.data_dir, hash_cost=CHEAP_COST, **config)
        self.app = create_app(self.services, self.config)
        self.app.testing = True
        self.web = self.app.extensions["linekeeper"]
        self.recovery_key = None

    def close(self):
        self.alarm_log.close()
        self.web.close()
        self.sweeper.close()
        self.store.close()
        self.calllog.close()

    def _play(self, line, samples):
        self.played.append((line, len(samples)))

    def _applied(self, config):
        self.applied.append(config)
        self.sweeper.update_settings(config.policy.retention)

    def add_recordings(self, call_ids, size=1000):
        """Real recording rows (and files of random bytes) for ``call_ids``."""
        import os

        for call_id in call_ids:
            rid = "%032x" % call_id
            self.store.begin(call_id, os.urandom(93), "voice", 1000, T0_US, recording_id=rid)
            with open(self.store.path_of(rid), "wb") as f:
                f.write(os.urandom(size))
            self.store.finish(rid, "complete", 30.0)

    def client(self):
        client = self.app.test_client()
        client.environ_base["wsgi.url_scheme"] = "https"
        client.environ_base["REMOTE_ADDR"] = "192.0.2.10"
        return client

    def token_of(self, client, path="/login"):
        page = client.get(path).get_data(as_text=True)
        m = TOKEN.search(page)
        assert m, "no CSRF token on %s:\n%s" % (path, page[:2000])
        return m.group(1)

    def setup_form(self, **over):
        return setup_form(self.data_dir, **over)

    def do_setup(self, client=None):
        """Complete the wizard and confirm the recovery key; returns the admin's client."""
        client = client or self.client()
        form = self.setup_form()
        form["csrf_token"] = self.token_of(client, "/setup")
        resp = client.post("/setup", data=form)
        assert resp.status_code == 302, resp.get_data(as_text=True)
        page = client.get("/setup/recovery").get_data(as_text=True)
        key = re.search(r'id="recovery-key">([^<]+)<', page).group(1)
        resp = client.post(
            "/setup/recovery",
            data={"csrf_token": self.token_of(client, "/setup/recovery"), "typed_key": key},
        )
        assert resp.status_code == 302
        self.recovery_key = key
        return client

    def login(self, name, password=None, client=None):
        client = client or self.client()
        resp = self.try_login(client, name, password or PASSWORDS[name])
        assert resp.status_code == 302, resp.get_data(as_text=True)
        return client

    def try_login(self, client, name, password):
        return client.post(
            "/login", data={"name": name, "password": password, "csrf_token": self.token_of(client, "/login")}
        )

    def lock_out(self, name, address=None):
        """Ten wrong passwords for ``name`` at the login, each from its own address (so no
        address's back-off waits): its account is locked out for 30 minutes, except from an
        address it logged in from. Given ``address`` (a desk it logged in from), all ten come
        from there, the clock moved on past each back-off (two minutes in all, no session
        idles out): the account is locked out from that address too."""
        throttle = self.web.throttle
        for n in range(10):
            client = self.client()
            client.environ_base["REMOTE_ADDR"] = address or "198.51.100.%d" % (n + 1)
            if address is not None:
                self.clock.advance(throttle.wait_s(throttle.account_keys(name, address)))
            assert self.try_login(client, name, "not the password %d" % n).status_code == 400, n
        assert throttle.locked_s(name)
        if address is not None:
            assert throttle.locks(throttle.account_keys(name, address)).get("lockat")

    def add_user(self, admin, name, roles, lines=()):
        resp = admin.post(
            "/users",
            data={
                "name": name,
                "password": PASSWORDS[name],
                "roles": list(roles),
                "lines": [str(x) for x in lines],
                "csrf_token": self.token_of(admin, "/users"),
            },
        )
        assert resp.status_code == 302, resp.get_data(as_text=True)
        self.chose_own_password(name)

    def chose_own_password(self, name):
        """Stand for ``name`` having changed the password an installer set for them (the
        password page's part, tested on its own): they log in to the pages, not to the
        password page first."""
        with self.web.db.tx() as conn:
            conn.execute("UPDATE users SET must_change = '' WHERE name = ?", (name,))

    def post(self, client, path, data=None, token_from="/"):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token_of(client, token_from))
        return client.post(path, data=data)

    def db_users(self):
        """Every account's row in web.db, as tuples (what a refused change must leave)."""
        return [tuple(r) for r in self.web.db.query("SELECT * FROM users ORDER BY name")]

    def audit_actions(self):
        return [e.action for e in self.services.audit.entries(limit=1000, newest_first=False)]


LISTEN_REASON = "complaint ref 1234"


def listen(client, call_id, reason=LISTEN_REASON):
    """Send the call's listen form (the reason asked before its player is shown, with the
    page's CSRF token); the response: the call's page it redirects to, with the player,
    or the form refused."""
    page = client.get("/calls/%d" % call_id).get_data(as_text=True)
    m = TOKEN.search(page)
    assert m, "no CSRF token on the page of call %d" % call_id
    data = {"csrf_token": m.group(1), "listen_reason": reason}
    return client.post("/calls/%d/listen" % call_id, data=data, follow_redirects=True)


def audio_url(client, call_id, reason=LISTEN_REASON):
    """The player's URL (its listening token) on call ``call_id``'s page, once the listen
    form gave ``reason``."""
    page = listen(client, call_id, reason).get_data(as_text=True)
    m = re.search(r'<audio[^>]*id="player"[^>]*src="([^"]+)"', page)
    assert m, "no player on the page of call %d:\n%s" % (call_id, page[:2000])
    return m.group(1).replace("&amp;", "&")


#: Who :func:`add_people` sets up (PASSWORDS also holds people some tests add).
PEOPLE = ("alice", "ivan", "sam", "sue", "audrey")


def add_people(box):
    """Set ``box`` up through the wizard (alice is its admin) and add one user per
    role; returns alice's client."""
    admin = box.do_setup()
    box.add_user(admin, "ivan", ["installer"])
    box.add_user(admin, "sam", ["supervisor"], [1, 2])
    box.add_user(admin, "sue", ["supervisor"], [3])
    box.add_user(admin, "audrey", ["auditor"])
    return admin


class PeopleTemplate:
    """A box set up once with :func:`add_people`, then closed: its data directory
    and recovery key, from which :meth:`box` makes a fresh box in the same state.

    The setup wizard and adding users are tested through the web UI in their
    own tests; this saves redoing them for every test that starts from a
    set-up box. Sessions do not survive a restart (their unlocked keys were
    only in that process's memory), so each person logs in to the new box.
    """

    def __init__(self, root):
        box = Box(root)
        try:
            add_people(box)
            self.recovery_key = box.recovery_key
            assert not box.applied and not box.played
        finally:
            box.close()
        self.data_dir = root / "data"

    def box(self, tmp_path, cipher=None, **config):
        """A new box on a copy of the set-up data; returns ``(box, {name: client})``,
        each client logged in."""
        box = Box(tmp_path, data_from=self.data_dir, cipher=cipher, **config)
        box.recovery_key = self.recovery_key
        return box, {name: box.login(name) for name in PEOPLE}


TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def page(client, url):
    """The text of the page at ``url``, which must answer 200."""
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return resp.get_data(as_text=True)


def ids(html):
    """The call ids of a calls list's rows, in the page's order."""
    return [int(m) for m in re.findall(r'<tr id="call-(\d+)"', html)]


def rules_form(box, client, **fields):
    """Post the rules page with every line recorded always, ``fields`` over that."""
    data = {
        "csrf_token": box.token_of(client, "/rules"),
        "default_mode": "always",
        "direction": ["in", "out"],
        "timezone": "Europe/London",
        "min_duration_s": "0",
        "sample_percent": "100",
        "on_demand-dtmf_code": "*9",
        "on_demand-button": "on",
        "on_demand-from_start": "on",
        "on_demand-lookback_s": "30",
    }
    for n in range(1, box.LINES + 1):
        data["line-%d-mode" % n] = "always"
    data.update(fields)
    return client.post("/rules", data=data)


class Cut(BaseException):
    """Stands for a power cut: nothing after it runs, nothing catches it."""


def cut(*args, **kwargs):
    """Put in place of the step a test cuts at."""
    raise Cut()


def restart_web(box):
    """Start ``box``'s web UI again over the same data, as after a power cut."""
    from web import create_app

    box.web.close()
    box.app = create_app(box.services, box.config)
    box.web = box.app.extensions["linekeeper"]  # closed by the fixture


class HeldWholeCheck:
    """``chain.verify_after`` (the audit trail's, or the retention service's) wrapped so
    that a whole check, from the first entry, made in another thread waits for
    :meth:`release`; one made in the test's own thread (a page request) is counted in
    :attr:`in_request` and goes on at once, so a page that still checks in its request
    fails an assertion rather than hanging. :attr:`started` counts the whole checks
    begun elsewhere; :attr:`waiting` is set when one waits."""

    def __init__(self, monkeypatch, chain):
        self.in_request, self.started = 0, 0
        self.waiting, self._go = threading.Event(), threading.Event()
        self._caller = threading.current_thread()
        real = chain.verify_after

        def verify_after(checked):
            if checked[0] == 0:
                if threading.current_thread() is self._caller:
                    self.in_request += 1
                else:
                    self.started += 1
                    self.waiting.set()
                    self._go.wait()
            return real(checked)

        monkeypatch.setattr(chain, "verify_after", verify_after)

    def release(self):
        self._go.set()


def chains_checked(box):
    """The audit trail and the deletion log checked whole, as the web UI's first look at
    each starts it in the background: a page after it says whether they verify (one before
    says they are not checked yet)."""
    box.web.audit_checked()
    if box.services.retention is not None:
        box.web.deletions_checked()
    box.web.wait_whole_checks()


def setup_form(data_dir, lines=LINES, admin=ADMIN, **over):
    """The setup wizard's fields for the box at ``data_dir``: ``lines`` lines recorded,
    ``admin`` (name, password) its first account, ``over`` changed."""
    form = {
        "setup_code": setup_code_for(data_dir),
        "organisation": "Acme Plumbing Ltd",
        "country": "uk",
        "ico_number": "ZA123456",
        "ico_renewal": "2027-01-31",
        "purpose": "To keep a record of orders taken by phone.",
        "admin_name": admin[0],
        "admin_password": admin[1],
        "admin_confirm": admin[1],
    }
    for n in range(1, lines + 1):
        form["line-%d-name" % n] = "Line %d" % n
        form["line-%d-mode" % n] = "record"
    form.update(over)
    return form


def made_since(box, before):
    """``(action, target, details)`` of each audit entry made after the first ``before``
    (``box.audit``'s count then), oldest first, without the ``change_id`` each change is
    given anew: what two ways of making one change must both write."""
    made = box.audit.entries(limit=1000)
    made = made[: len(made) - before]
    plain = lambda details: {k: v for k, v in details.items() if k != "change_id"}  # noqa: E731
    return [(e.action, e.target, plain(e.details)) for e in reversed(made)]


def assert_remove_boxes(page, row, label, saved=2):
    """Each of a settings table's first ``saved`` rows (``row``-N-...) has its Remove box on
    ``page``, labelled "Remove ``label`` N"; the next row, blank, has none (nothing to remove)."""
    for i in range(saved):
        box_html = (
            '<label class="check"><input type="checkbox" id="%s-%d-remove" name="%s-%d-remove" '
            'value="on"> Remove %s %d</label>' % (row, i, row, i, label, i + 1)
        )
        assert box_html in page, (row, i)
    assert 'name="%s-%d-remove"' % (row, saved) not in page, row


def audited_change(box, post, saved, change, state, before, after):
    """Save a settings form's ``saved`` rows with ``post(**fields)`` (its status a redirect),
    ``state()`` then ``before``; post them again with ``change`` and the rows' saved marks,
    ``state()`` then ``after``. Returns the audit entries the change made (:func:`made_since`):
    two ways of making one change compare them."""
    assert post(**saved).status_code == 302
    assert state() == before
    count = len(box.audit.entries(limit=1000))
    assert post(**dict(saved, **change)).status_code == 302
    assert state() == after
    return made_since(box, count)
