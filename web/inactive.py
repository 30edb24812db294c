"""Accounts nobody has used for 90 days are disabled (PCI DSS v4.0 8.2.6).

An account's unused days count from its last login (the audit trail's ``login`` entries;
one before the account was made is an earlier account's of the same name, and not
counted), else from when it was made, and from when an installer last enabled it if that
is later (:func:`last_logins`). At :data:`UNUSED_DAYS` the box disables it
(:func:`disable_unused`): in the web UI's periodic round (:meth:`web.Web.sweep`) and at
every login, before the password is checked; and by the command line, before a key
slot's password is checked (``firmware.cli``, :func:`disable_accounts`: the web UI may not
be running). Each is audited first (``account_disabled``, by ``system``, with
:data:`UNUSED_REASON`), and its sessions end.

The box is never locked out: an installer is not disabled when no other installer's
account would be left enabled. It stays listed as unused on the Users page, which says why
it was not disabled. Of installers unused alike, the one used last is the one kept.

Nothing is disabled while the box's clock cannot be trusted to count days by
(:func:`clock_held`): not synchronised (the box's health, as the dashboard says it), or
after a jump that its retention clock guard caught and an installer has not yet confirmed
(:class:`firmware.policy.clockguard.ClockGuard`: the same judgement that holds automatic
deletion back). A clock set to next year by a wrong time server, or by hand, disabled
every account but the last installer's at once. The Users page says why they wait, and
the first round once the clock is good again disables them as usual.

Nor is any disabled by a time the box has not accepted yet: the days are counted to now,
but never past the last time the retention sweep's clock guard passed (:func:`accepted_us`).
The guard looks once a sweep (``sweep_interval_min``, an hour by default); a clock stepped
forward while synchronised was counted by in between, and a step of a year disabled every
account but the last installer's before the guard could hold it. An account is disabled at
most a sweep late for it.

While the recorder does not answer (stopped, restarting) no sweep passes, and the web UI
cannot ask it whether its clock is synchronised; taken as not synchronised, nothing would
be disabled for as long as it was down. The web UI then judges the clock as the command
line does
(:func:`judged_apart`): the kernel's word that it is synchronised, the guard's state as
the last sweep left it in calls.db, and the days run on from that sweep by the kernel's
boot clock in the same boot (no step of the wall clock moves it). A clock it cannot trust
disables nothing, and the Users page says the recorder is not answering and why.
"""

import logging
import sqlite3

from firmware import clock
from firmware.errors import LinekeeperError
from firmware.policy.clockguard import ClockGuard, SavedGuardState

from .documents import keep_notice_changed

log = logging.getLogger(__name__)

UNUSED_DAYS = 90
DAY_US = 86_400 * 10**6
# Why the box disabled an account (its audit entry, the Users page).
UNUSED_REASON = "unused for %d days" % UNUSED_DAYS
# Why nothing is disabled now (:func:`clock_held`; the Users page).
CLOCK_UNSYNCHRONISED = "the box's clock is not synchronised"
CLOCK_JUMPED = "the box's clock jumped and an installer has not confirmed the time on the Retention page"
CLOCK_NOT_ACCEPTED = "the box's clock has not been checked by a retention sweep yet"
# Before any of those while the recorder does not answer (:func:`judgement`).
RECORDER_STOPPED = "the recorder is not answering and "


def last_logins(web, users, now_us=None):
    """``{name: {"last_us": their last login (µs) or None, "since_us": when their unused
    days count from (that login, else when the account was made, or when it was last
    enabled if later), "days": the days since (to ``now_us``, else the box's wall time),
    "unused_days": those days when at least :data:`UNUSED_DAYS`, else None}}`` of ``users``."""
    return unused_days(
        users,
        int(web.services.wall_us()) if now_us is None else now_us,
        lambda name: web.services.audit.last_at("login", name),
        web.accounts.created_us,
        web.accounts.enabled_us,
    )


def unused_days(users, now_us, last_login, created_us, enabled_us):
    """:func:`last_logins` of any accounts (the box's, the central viewer's:
    :mod:`web.archive.users`) at ``now_us``: ``last_login(name)``, ``created_us(name)`` and
    ``enabled_us(name)`` say when (µs) each last logged in, was made and was last enabled,
    or None."""
    out = {}
    for u in users:
        created = created_us(u.name)
        last = last_login(u.name)
        if last is not None and created is not None and last < created:
            last = None
        since = max((t for t in (last, created, enabled_us(u.name)) if t is not None), default=None)
        days = None if since is None else (now_us - since) // DAY_US
        out[u.name] = {
            "last_us": last,
            "since_us": since,
            "days": days,
            "unused_days": days if days is not None and days >= UNUSED_DAYS else None,
        }
    return out


def clock_held(web):
    """Why the box's clock cannot be trusted to disable by now (:data:`CLOCK_UNSYNCHRONISED`,
    :data:`CLOCK_JUMPED`, :data:`CLOCK_NOT_ACCEPTED`; after :data:`RECORDER_STOPPED` while
    the recorder does not answer), or None: it is synchronised (the box's health; the
    simulated board's clock counts as synchronised there, as everywhere) and its retention
    clock guard holds no jump and has passed a time (:func:`accepted_us`). A box without a
    health provider has no clock known good."""
    return judgement(web)[0]


def judgement(web):
    """``(held, counted_to_us)``: :func:`clock_held` and :func:`accepted_us` read together.
    While the recorder does not answer (the box's health says ``"recorder": "down"``) they
    are judged as the command line judges them (:func:`judged_apart`), from the web UI's
    data directory: the recorder's health says the clock is not synchronised then, and its
    guard says nothing."""
    services = web.services
    health = services.health() if services.health is not None else None
    if health is not None and health.get("recorder") == "down":
        held, counted_to_us = judged_apart(web.config.data_dir, int(services.wall_us()))
        return (None if held is None else RECORDER_STOPPED + held), counted_to_us
    synced = health is not None and bool(health.get("clock_synced"))
    retention = services.retention
    guard = None if retention is None else retention.guard
    return held_by(synced, guard), accepted_by(int(services.wall_us()), guard)


def judged_apart(data_dir, now_us):
    """``(held, counted_to_us)`` (:func:`held_by`, :func:`accepted_by`) at ``now_us`` in a
    process without the recorder's clock guard: the command line's (``firmware.cli``), and
    the web UI's while the recorder does not answer. The kernel's word that the clock is
    synchronised (the recorder's, on a box); the guard's state as the last sweep left it in
    ``data_dir``'s calls.db (a jump it holds, or no sweep passed yet, disables nothing); and
    the days counted to that sweep and on from it by the kernel's boot clock, in the same
    boot only (:meth:`ClockGuard.vouched_us`): no sweep passes while the recorder is
    stopped, and no step of the wall clock moves the boot clock. After a reboot the days
    stop at the last sweep until the recorder's next one passes.

    :raises sqlite3.Error: calls.db could not be read"""
    guard = ClockGuard(None, SavedGuardState(data_dir), None)
    held = held_by(clock.kernel_clock_synchronised(), guard)
    return held, accepted_by(now_us, guard, clock.boot_reading())


def held_by(synced, guard):
    """:func:`clock_held` of a clock ``synced`` or not, and ``guard`` (the retention clock
    guard's state: its ``suspended`` and ``last_passed_us``; None: a box without one):
    the web UI's judgement, and the command line's (``firmware.cli``), which reads the
    guard's state in calls.db and the kernel's word on the clock."""
    if not synced:
        return CLOCK_UNSYNCHRONISED
    if guard is not None:
        if guard.suspended is not None:
            return CLOCK_JUMPED
        if guard.last_passed_us is None:
            return CLOCK_NOT_ACCEPTED
    return None


def accepted_us(web):
    """The time (µs) the box counts unused days to when it disables: its wall time, but
    not past the last time the retention sweep's clock guard passed
    (:attr:`firmware.policy.clockguard.ClockGuard.last_passed_us`): a step forward the
    guard has not judged yet disables nothing (it holds the step at its next sweep, or
    passes it, and the days are counted to it then). A box without a retention service
    counts to its wall time. While the recorder does not answer: :func:`judgement`."""
    return judgement(web)[1]


def accepted_by(now_us, guard, boot=None):
    """:func:`accepted_us` at ``now_us`` with ``guard`` (as for :func:`held_by`). With
    ``boot``, the kernel's boot clock read now (:func:`firmware.clock.boot_reading`;
    :func:`judged_apart`), the days run on past the last passed sweep by the real time since it
    in the same boot (:meth:`firmware.policy.clockguard.ClockGuard.vouched_us`): while the
    recorder is stopped no sweep passes, and nothing was disabled however long it was."""
    if guard is None:
        return now_us
    last = guard.last_passed_us if boot is None else guard.vouched_us(boot)
    return now_us if last is None else min(now_us, int(last))


def due(users, logins):
    """The enabled ``users`` unused for :data:`UNUSED_DAYS` or more (``logins``:
    :func:`unused_days`), the longest unused first: those to disable."""
    return sorted(
        (u for u in users if u.disabled_us is None and logins[u.name]["unused_days"] is not None),
        key=lambda u: (logins[u.name]["since_us"], u.name),
    )


def disable_due(users, logins, still_enabled, other_enabled_installer, audit, disable):
    """Disable each of :func:`due` ``users`` but the last enabled installer; returns the
    names disabled. For each, ``still_enabled(name)`` (not deleted or disabled meanwhile),
    ``other_enabled_installer(name)`` (an installer's is not disabled without one: the
    box, or the viewer, is never locked out), then ``audit(name, details)`` before
    ``disable(name)``."""
    disabled = []
    for user in due(users, logins):
        if not still_enabled(user.name):
            continue  # deleted or disabled meanwhile
        if user.has("installer") and not other_enabled_installer(user.name):
            continue  # never locked out: it stays listed as unused
        audit(user.name, {"reason": UNUSED_REASON, "unused_days": logins[user.name]["unused_days"]})
        disable(user.name)
        disabled.append(user.name)
    return disabled


def disable_unused(web):
    """Disable every enabled account unused for :data:`UNUSED_DAYS` or more (counted to
    :func:`accepted_us`) but the last enabled installer (the longest unused first), unless
    the clock is held (:func:`clock_held`); returns the names disabled
    (:func:`disable_accounts`). The sessions of those disabled end once it is committed.
    While the recorder does not answer, as the command line does (:func:`judgement`)."""
    services = web.services
    held, counted_to_us = judgement(web)
    disabled = disable_accounts(
        web.db, web.accounts, services.audit, services.wall_us, counted_to_us, lambda: held
    )
    for name in disabled:
        web.sessions.end_user(name)
    if any("supervisor" in u.roles for u in web.accounts.all() if u.name in disabled):
        _keep_notice(web)
    return disabled


def _keep_notice(web):
    """The staff notice names the enabled supervisors as who may listen: one disabled here
    changed its words, kept at once (:func:`web.documents.keep_notice_changed`) as the Users
    page's disabling keeps them, so the trail dates the version from when it took effect.
    Not kept (logged), its first showing keeps it."""
    try:
        keep_notice_changed(web)
    except (LinekeeperError, OSError, sqlite3.Error) as exc:
        log.warning("the staff notice's words were not kept after disabling accounts: %s", exc)


def disable_accounts(db, accounts, audit, wall_us, counted_to_us, held):
    """Disable the enabled :class:`web.accounts.Accounts` ``accounts`` of the
    :class:`web.db.WebDb` ``db`` unused for :data:`UNUSED_DAYS` or more, counted to
    ``counted_to_us`` (:func:`accepted_by`), but the last enabled installer, unless
    ``held()`` says why the clock is not to be trusted (:func:`held_by`: asked only when
    some are due); returns the names disabled. The web UI's round and login
    (:func:`disable_unused`) and the command line's key slots (``firmware.cli``) ask it.

    Decided and made in one web.db transaction, each audited in ``audit`` (the box's
    trail; its logins say when each was last used) inside it before its row changes, at
    ``wall_us()`` (an entry whose change a cut stopped is made, and audited, again at the
    next check)."""
    users = accounts.all()
    logins = unused_days(
        users,
        counted_to_us,
        lambda name: audit.last_at("login", name),
        accounts.created_us,
        accounts.enabled_us,
    )
    if not due(users, logins) or held() is not None:
        return []  # (the Users page says why they wait)
    now = int(wall_us())
    with db.tx() as conn:

        def still_enabled(name):
            row = conn.execute("SELECT disabled_us FROM users WHERE name = ?", (name,)).fetchone()
            return row is not None and row[0] is None

        return disable_due(
            users,
            logins,
            still_enabled,
            lambda name: _other_enabled_installer(conn, name),
            lambda name, details: audit.append("system", "account_disabled", name, details, now),
            lambda name: accounts.disable(conn, name, UNUSED_REASON),
        )


def _other_enabled_installer(conn, name):
    """Whether an installer other than ``name`` has an enabled account (in ``conn``)."""
    rows = conn.execute("SELECT roles FROM users WHERE name != ? AND disabled_us IS NULL", (name,))
    return any("installer" in r["roles"].split(",") for r in rows.fetchall())


def kept_installers(users, logins):
    """The names of ``users`` unused for :data:`UNUSED_DAYS` or more (``logins``:
    :func:`last_logins`) that are left enabled as the box's last enabled installer."""
    enabled = [u for u in users if u.disabled_us is None and u.has("installer")]
    if len(enabled) != 1:
        return []
    return [u.name for u in enabled if logins[u.name]["unused_days"] is not None]
