"""Alarms by e-mail: the first of a fault at once, its repeats gathered.

A flapping line raises its fault again and again (a line dropping out for 3 seconds
every 10 minutes, all day); each occurrence is kept in the alarm history, but mail
goes out for the first, then at most once more a few hours later
(:data:`FOLLOW_UP_S`), then once a day (:data:`SUMMARY_S`) while it keeps happening,
each mail saying how many times it happened since the last one and when last. An
alarm (kind and line) not raised for a day (:data:`QUIET_S`) is a new fault when it
comes again, mailed at once; an alarm of another kind or line is never held back by
this one's repeats. An alarm mailed in a run that has cleared is told so once, when its
next mail may go (:meth:`AlarmMailer.follow_ups`): when it cleared and how many times it
happened since the first mail; nothing more while it stays clear. No repeat is mailed
sooner than the rate window (``rate_window_s``) after the mail before it. A staff concern, a power cut and a
failed start are mailed every time (:data:`EVERY_ONE_MAILED`), up to
:data:`EVERY_ONE_BURST` in a rate window: a recorder that crashes and is started again
every few seconds raises ``power_loss_restart`` at each start, which must not become a
mail every few seconds. Concerns are counted per person: one account's five never hold
back another's.

The window's state is kept on the card (``mail/alarm-rate.json``), not only in
memory: a process that restarts in a loop starts each time with an empty memory,
and would mail every start.

An alarm of one line is mailed to the recipients tied to an account only if that
account may see that line, as the pages show it only to them, and to those tied
to none (:func:`recipients_for`); one of the whole box to every recipient. A line's
alarm that none of them may see (:func:`unreached_lines`: every recipient tied to a
supervisor of other lines, or to an account since removed or disabled) is not dropped: it is mailed
to every recipient, saying why and without the alarm's own words or call
(:func:`~firmware.mail.compose.unreached_alarm_message`).
"""

import contextlib
import json
import logging
import os
import threading

from firmware.alarmlog import EVENT_KINDS
from firmware.alarms import sees_alarms_of
from firmware.storage import fsutil

from .compose import FollowUp, Repeats, alarm_message, cleared_message, unreached_alarm_message

log = logging.getLogger(__name__)
# Each occurrence of these is news of its own, never a repeat: a second staff concern
# says something else than the first, and every power cut or failed start is one.
EVERY_ONE_MAILED = frozenset({"staff_concern", "power_fail", "power_loss_restart", "recorder_start_failed"})
# How many of one of those are mailed in one rate window; the rest are counted, and the
# next mail says how many.
EVERY_ONE_BURST = 5
# A repeating alarm (any other kind): after its first mail, the next one no sooner than
# this (4 h), then one a day; one not raised for a day is a new fault, mailed at once.
FOLLOW_UP_S = 4 * 3600
SUMMARY_S = 24 * 3600
QUIET_S = 24 * 3600
# Alarms cleared when the next step of the same matter is raised (the ICO registration's
# renewal, firmware.alarmchecks.DateChecks: 60 days, then 30, 7, then expired): such a
# clearing is no news, the next step's own mail says where things are, so none follows.
SUPERSEDED_BY = {
    "ico_renewal_60": ("ico_renewal_30", "ico_renewal_7", "ico_expired"),
    "ico_renewal_30": ("ico_renewal_7", "ico_expired"),
    "ico_renewal_7": ("ico_expired",),
}
STATE_FILE = os.path.join("mail", "alarm-rate.json")
# A key not raised for this long is dropped from the state file.
_FORGET_US = 7 * 24 * 3600 * 1_000_000
# The fields of a key's window, and how much of the file is read (a few dozen alarm
# kinds and lines make a few kilobytes).
_FIELDS = (
    "last_us",
    "from_us",
    "seen_us",
    "suppressed",
    "sent",
    "mails",
    "held_us",
    # Of a run of a repeating alarm: its first mail, the occurrences since, when it last
    # cleared (none while it is on), and 1 once a mail said it cleared (the follow-up).
    "first_us",
    "count",
    "cleared_us",
    "told",
)
_MAX_STATE_BYTES = 1 << 20


def _whole(value):
    return type(value) is int and 0 <= value < 1 << 63


def recipients_for(settings, line, accounts):
    """The alarm recipients of ``settings`` who get the mail about an alarm of ``line``.

    Of the whole box (line 0): every one. Of one line: an address tied to no
    account, as the installer who wrote it there asked (every alarm, as an
    installer sees them: a line that stops recording unnoticed costs more than
    the line's number in a mail), and those tied to an account
    (``settings.alarm_accounts``) that sees that line's alarms on the pages
    (:func:`firmware.alarms.sees_alarms_of`: an installer's or auditor's, a
    supervisor's of their own lines). An address tied to an account that no
    longer exists or sees no alarms gets only the whole box's: it was tied to
    be limited, and what it was limited to is gone. A disabled account (unused
    for 90 days, or by an installer) is not in ``accounts``: a leaver's address
    tied to it is mailed as one tied to a deleted account, until it is enabled.

    :param accounts: ``{name: (roles, lines)}`` (:func:`firmware.datadir.account_lines`),
        or None when they cannot be read now (then the tied addresses get only the
        whole box's)
    """
    if not line:
        return tuple(settings.alarm_to)
    tied = dict(settings.alarm_accounts)
    accounts = accounts or {}
    return tuple(
        address
        for address in settings.alarm_to
        if address not in tied
        or (tied[address] in accounts and sees_alarms_of(*accounts[tied[address]], line))
    )


def unreached_lines(settings, accounts, n_lines):
    """The lines of ``1..n_lines`` whose alarms :func:`recipients_for` mails to no alarm
    recipient of ``settings`` (each is tied to an account that does not see that line,
    or one that no longer exists or sees alarms); () when there is no recipient at all,
    a state of its own (nothing is mailed, and the pages say so).

    :param accounts: ``{name: (roles, lines)}``, as :func:`recipients_for` takes them
    """
    if not settings.alarm_to:
        return ()
    return tuple(n for n in range(1, n_lines + 1) if not recipients_for(settings, n, accounts))


def _concern_of(message):
    """``":NAME"`` of a concern's ``message`` ("from NAME: ...", as the web UI writes it), or
    "": a concern's burst is counted per person, so that one account's concerns (at most
    ``web.views.alarms.CONCERNS_A_DAY`` a day) never hold back the mail of another's."""
    text = message if isinstance(message, str) else ""
    if not text.startswith("from ") or ": " not in text:
        return ""
    return ":" + text[len("from ") :].split(": ", 1)[0]


class AlarmMailer:
    """Queue a mail for each alarm raised (an :class:`~firmware.alarmlog.AlarmLog` listener).

    :param queue: a :class:`~firmware.mail.queue.MailQueue`
    :param settings: ``() -> MailSettings``
    :param wall_us: ``() -> µs``
    :param on_queued: called after a mail is queued (wakes the delivery thread)
    :param state_path: where the rate windows are kept (JSON; both services share it),
        or None to keep them in memory only
    :param accounts: ``() -> {name: (roles, lines)}`` or None (the web accounts, whose
        lines decide who gets a line's alarm: :func:`recipients_for`); None: no accounts,
        a line's alarm is mailed only to the addresses tied to none (to every recipient,
        without its details, when every one is tied)
    """

    def __init__(
        self,
        queue,
        settings,
        wall_us,
        box_name="Linekeeper",
        on_queued=None,
        site=None,
        state_path=None,
        accounts=None,
    ):
        self.queue = queue
        self.accounts = accounts
        self.settings = settings
        self.wall_us = wall_us
        self.box_name = box_name
        self.on_queued = on_queued
        # () -> (box's name, LocalTime, {line: name}): what the mails say, as saved now.
        self.site = site or (lambda: (self.box_name, None, {}))
        self.state_path = state_path
        self._lock = threading.Lock()
        # "kind:line" -> {"last_us": the last mail, "suppressed": occurrences not mailed
        # since, "held_us": the last of them, "seen_us": the last occurrence, "mails":
        # the mails of this run of repeats, "from_us"/"sent": the window of the every-one
        # kinds and its mails}
        self._memory = {}

    def _load(self):
        """The windows as kept: entries whose fields are not whole numbers in range are
        dropped (a damaged or planted file must not stop the mails, and it heals at the
        next save)."""
        if self.state_path is None:
            return self._memory
        try:
            with open(self.state_path, "rb") as f:
                raw = f.read(_MAX_STATE_BYTES + 1)
            if len(raw) > _MAX_STATE_BYTES:
                raise ValueError("over %d bytes" % _MAX_STATE_BYTES)
            state = json.loads(raw)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("the alarm mails' rate windows cannot be read (%s): starting afresh", exc)
            return {}
        if not isinstance(state, dict):
            return {}
        return {
            key: {f: v for f, v in entry.items() if f in _FIELDS and _whole(v)}
            for key, entry in state.items()
            if isinstance(key, str) and isinstance(entry, dict)
        }

    def _save(self, state, now):
        def kept(v):
            # One whose follow-up is owed (on for weeks, the line dead: still told once it
            # clears) is kept however long ago it was raised.
            owed = "first_us" in v and v.get("mails") and not v.get("told")
            return owed or now - v.get("seen_us", now) < _FORGET_US

        state = {k: v for k, v in state.items() if isinstance(v, dict) and kept(v)}
        if self.state_path is None:
            self._memory = state
            return
        try:
            fsutil.atomic_write(self.state_path, json.dumps(state, sort_keys=True).encode("utf-8"))
        except OSError as exc:  # a full card: the mail matters more than the window
            log.warning("the alarm mails' rate windows cannot be kept (%s)", exc)

    def _due(self, row, window_us, now):
        """Whether ``row`` is mailed now, and the :class:`~firmware.mail.compose.Repeats`
        its mail tells of; the state is updated and kept either way, with the other service
        kept out meanwhile (it writes the same file)."""
        with self._file_lock():
            return self._decide(row, window_us, now)

    def _file_lock(self):
        if self.state_path is None:
            return contextlib.nullcontext()
        return fsutil.file_lock(self.state_path + ".lock", "the alarm mails' rate windows")

    def _decide(self, row, window_us, now):
        key = "%s:%s" % (row["kind"], row["line"])
        if row["kind"] == "staff_concern":
            key += _concern_of(row.get("message"))
        state = self._load()
        st = state.get(key)
        st = dict(st) if isinstance(st, dict) else {}
        seen_us = st.get("seen_us")
        st["seen_us"] = now

        def ended(since, wait_us):  # a clock set back ends the wait too
            return since is None or not since <= now < since + wait_us

        next_us = None
        if row["kind"] in EVERY_ONE_MAILED:
            if ended(st.get("from_us"), window_us):
                st["from_us"], st["sent"] = now, 0
            mail = st.get("sent", 0) < EVERY_ONE_BURST
        else:
            if ended(seen_us, QUIET_S * 1_000_000):
                st["mails"] = 0  # a new fault: not raised for a day (or never)
            # A state kept before repeats were counted had mailed once at last_us.
            mails = st.get("mails", 1 if "last_us" in st else 0)
            mail = mails == 0 or ended(st.get("last_us"), self._wait_us(mails, window_us))
            if mails == 0:
                st["first_us"], st["count"] = now, 0
            else:
                st["count"] = st.get("count", 0) + 1
            # On again: its clearing is news once more (a follow-up when it clears).
            st.pop("cleared_us", None)
            st["told"] = 0
            st["mails"] = mails + 1 if mail else mails
            after = st["mails"]
            next_us = (now if mail else st.get("last_us", now)) + self._wait_us(after, window_us)
        count = int(st.get("suppressed", 0))
        follow_up = next_us is not None and row["kind"] not in EVENT_KINDS
        repeats = Repeats(count, st.get("last_us"), st.get("held_us"), next_us, follow_up)
        if mail:
            st.pop("suppressed", None)
            st.pop("held_us", None)
            st["last_us"] = now
            st["sent"] = st.get("sent", 0) + 1
        else:
            st["suppressed"] = count + 1
            st["held_us"] = now
        state[key] = st
        self._save(state, now)
        return mail, repeats

    def cleared(self, row):
        """An :class:`~firmware.alarmlog.AlarmLog` ``on_cleared`` listener: alarm occurrence
        ``row`` cleared. A repeating alarm mailed in this run is told cleared once
        (:meth:`follow_ups`), when the next mail about it may go."""
        if row["kind"] in EVERY_ONE_MAILED or row["kind"] in EVENT_KINDS:
            return  # each is news of its own, cleared as it is raised: nothing to follow
        now = int(self.wall_us())
        key = "%s:%s" % (row["kind"], row["line"])
        with self._lock, self._file_lock():
            state = self._load()
            st = state.get(key)
            if not isinstance(st, dict) or not st.get("mails") or "first_us" not in st:
                return  # never mailed (or mailed by a release that kept no run): nothing to follow
            st = dict(st, cleared_us=int(row.get("cleared_us") or now))
            state[key] = st
            self._save(state, now)
        # The mail service's round sends it when due (at once when the window is over):
        # after what cleared it in the same round (a next step, SUPERSEDED_BY) is raised.
        if self.on_queued is not None:
            self.on_queued()

    def follow_ups(self):
        """Mail each follow-up that is due: of a repeating alarm mailed in this run, now
        clear and not yet told so, once its next mail may go (:meth:`_wait_us`: the first
        mail's follow-up four hours after it, then a day): that it cleared, when, and how
        many times it happened since the first mail. One each, nothing more while it stays
        clear; it counts as one of the run's mails. Run by each round of the mail service,
        which a clearing starts (:meth:`cleared`), and every minute (a window that ends
        with no repeat). Returns how many were queued."""
        settings = self.settings()
        if not settings.configured or not settings.alarm_to:
            return 0
        now = int(self.wall_us())
        window_us = settings.rate_window_s * 1_000_000
        due = []
        superseded = False
        with self._lock, self._file_lock():
            state = self._load()
            for key, st in state.items():
                kind, _, line = key.rpartition(":")
                if (
                    kind in EVERY_ONE_MAILED
                    or not line.isdigit()
                    or "cleared_us" not in st
                    or "first_us" not in st
                    or st.get("told")
                    or not st.get("mails")
                ):
                    continue
                since = st.get("last_us")
                if since is not None and since <= now < since + self._wait_us(st["mails"], window_us):
                    continue  # its next mail may not go yet (a clock set back ends the wait)
                if self._superseded(state, kind, line, st["cleared_us"]):
                    st["told"] = 1  # its next step's mail told where things are
                    superseded = True
                    continue
                st["told"], st["last_us"], st["mails"] = 1, now, st["mails"] + 1
                follow = FollowUp(
                    st["first_us"],
                    st.get("count", 0),
                    st["cleared_us"],
                    now + self._wait_us(st["mails"], window_us),
                    since if since is not None and since != st["first_us"] else None,
                    st.get("suppressed", 0),
                )
                due.append(({"kind": kind, "line": int(line)}, follow))
                st.pop("suppressed", None)
                st.pop("held_us", None)
            if due or superseded:
                self._save(state, now)
        if not due:
            return 0
        name, local_time, lines = self.site()
        for row, follow in due:
            to = recipients_for(
                settings, row["line"], self.accounts() if row["line"] and self.accounts else None
            )
            # It says no more than the mail every recipient gets when none sees the line.
            to = to or tuple(settings.alarm_to)
            self.queue.enqueue(cleared_message(settings, row, name, now, follow, local_time, lines, to=to))
        if self.on_queued is not None:
            self.on_queued()
        return len(due)

    @staticmethod
    def _superseded(state, kind, line, cleared_us):
        """Whether alarm ``kind`` of ``line``, cleared at ``cleared_us``, was cleared by a
        next step of its matter (:data:`SUPERSEDED_BY`) raised then or since and still on."""
        for later in SUPERSEDED_BY.get(kind, ()):
            st = state.get("%s:%s" % (later, line))
            if isinstance(st, dict) and "cleared_us" not in st and st.get("seen_us", -1) >= cleared_us:
                return True
        return False

    @staticmethod
    def _wait_us(mails, window_us):
        """How long after the last mail of a repeating alarm, mailed ``mails`` times in
        this run, the next may go: a few hours after the first, then a day; never less
        than the rate window."""
        return max(window_us, (FOLLOW_UP_S if mails <= 1 else SUMMARY_S) * 1_000_000)

    def __call__(self, row):
        settings = self.settings()
        if not settings.configured or not settings.alarm_to:
            log.warning("alarm %s not e-mailed: no mail server or alarm recipients set", row["kind"])
            return
        to = recipients_for(settings, row["line"], self.accounts() if row["line"] and self.accounts else None)
        compose = alarm_message
        if not to:
            # Dropped, a line that stops recording would go unnoticed by everyone the
            # installer chose to tell: every recipient is told, without what only those
            # who see the line may read (the alarm's words may name a caller or carry a
            # concern; its call), and why they got it.
            log.warning(
                "alarm %s of line %d: no alarm recipient is tied to an account that sees that line "
                "(E-mail page); mailed to every recipient without its details",
                row["kind"],
                row["line"],
            )
            to, compose = tuple(settings.alarm_to), unreached_alarm_message
        now = int(self.wall_us())
        with self._lock:
            mail, repeats = self._due(row, settings.rate_window_s * 1_000_000, now)
        if not mail:
            return
        name, local_time, lines = self.site()
        self.queue.enqueue(compose(settings, row, name, now, repeats, local_time, lines, to=to))
        if self.on_queued is not None:
            self.on_queued()
