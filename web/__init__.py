"""The web UI (Flask, server-rendered, a little JavaScript, no build step).

:func:`create_app` takes the box's services (:class:`web.services.Services`)
and a :class:`web.services.WebConfig`, so tests build an app around fakes or
a simulated box. One blueprint per resource, in ``web/views/``; who may call
what is declared on each view and enforced in :mod:`web.security`.
"""

import logging
import os
import sqlite3
import threading
from typing import NamedTuple

from flask import Flask, current_app, g, has_request_context, jsonify, render_template, request
from werkzeug.routing import IntegerConverter

from firmware import words
from firmware.datadir import storage_error
from firmware.errors import KeyStoreError, LineKeyLostError, TamperError
from firmware.lawfulbasis import BASES as LAWFUL_BASES
from firmware.localtime import (
    LocalTime,
    box_zone,
    day_words,
    days_words,
    duration_text,
    iso_to_us,
    zone_names,
)
from firmware.rights import REGIONS, holidays_of
from firmware.sar import DisclosureLog
from firmware.storage.audit import GENESIS_HASH
from firmware.storage.fieldseal import FieldSealError
from firmware.storage.keystore import ALL_LINES
from telephony import countries

from . import inactive, intent, pwchange, security, sitechange, unreadable
from .accounts import ROLE_LABELS, Accounts
from .corrections import NameCorrections
from .db import WebDb
from .documents import keep_notice_at_start
from .keyepoch import KeysInForce
from .phonebook import CallNotes, Phonebook
from .sarjob import SarJobs
from .services import Services, WebConfig
from .sessions import Sessions
from .site import Site, card_free, no_card, typed_back
from .throttle import Throttle
from .views import (
    CHECK_STANDS_S,
    alarms,
    api,
    audit,
    auth,
    calls,
    consent,
    dashboard,
    documents,
    erasecalls,
    help,
    mail,
    myline,
    phonebook,
    rekey,
    reports,
    retention,
    rights,
    rules,
    sar,
    settings,
    setup,
    updates,
    users,
)

log = logging.getLogger(__name__)

__all__ = ["create_app", "Services", "WebConfig", "Web"]

STATE_LABELS = words.STATES

# The alarm raised while a chain does not verify or cannot be checked, and its name in it.
CHAIN_ALARMS = {"audit": "audit_unverified", "deletions": "deletion_log_unverified"}
CHAIN_WORDS = {"audit": "the audit trail", "deletions": "the deletion log"}


class ChainCheck(NamedTuple):
    """What :meth:`Web.audit_checked` (or :meth:`Web.deletions_checked`) knows of a chain."""

    problems: list  # what the checks found (empty: it verifies, if checked_us is not None)
    checked_us: int | None  # when it was last checked whole; None: not since the start
    checking: bool  # a whole check is under way
    failed: str | None  # why the last whole check could not run; None: it ran
    # Why the check of the entries added since the last one could not run (an exception,
    # a damaged or locked database) when last tried; None: it ran. The chain is not known
    # to verify meanwhile.
    since_failed: str | None


class Web:
    """What the views share: the services, the config and web.db's stores."""

    def __init__(self, services, config):
        self.services = services
        self.config = config
        os.makedirs(config.data_dir, exist_ok=True)
        self.db = WebDb(os.path.join(config.data_dir, "web.db"))
        # Accounts are dated by the box's clock, as the audit trail their logins are read
        # from is (web.inactive compares the two); sessions and the login back-off measure
        # time elapsed for people, by the session clock.
        self.accounts = Accounts(self.db, lambda: int(services.wall_us()), config.hash_cost)
        clock = services.session_clock_us
        self.sessions = Sessions(self.db, clock, config.idle_timeout_s, config.session_max_age_s)
        self.throttle = Throttle(self.db, clock, services.cipher)
        self.site = Site(self.db)
        self.phonebook = Phonebook(self.db, services.wall_us, services.cipher)
        self.notes = CallNotes(self.db, services.wall_us, services.cipher)
        self.corrections = NameCorrections(self.db, services.wall_us, services.cipher)
        self.stopping = threading.Event()  # set when the server stops: streams end
        self._closed = False
        self.keys_in_force = KeysInForce(services.keystore)
        self.sar_jobs = SarJobs(config.data_dir, expired=self._bundle_expired)
        self._unsettled = False  # a step of :meth:`settle` failed: the sweep tries again
        # What :meth:`audit_checked` and :meth:`deletions_checked` found, when the chain was
        # last checked whole and up to which entry since: {name: (wall_us, problems, (seq, hash))}.
        self._checked = {}
        self._check_locks = {"audit": threading.Lock(), "deletions": threading.Lock()}
        # The whole check of each chain under way in the background (one at a time), if any.
        self._whole_checks = {}
        # Why the last whole check of each chain could not run (an exception), until one runs.
        self._check_failed = {}
        # Why the last check of each chain's entries added since could not run, until one
        # (or a whole check) runs.
        self._since_failed = {}
        self._alarm_lock = threading.Lock()  # (:meth:`_chain_alarm`)
        # A legal hold's state read and changed in one step (web.views.calls.hold): of two
        # forms sent at once, the second finds the first's change.
        self.hold_lock = threading.Lock()

    def end_sessions_of_old_keys(self):
        """End (audited) every session opened under keys a rekey has since replaced.

        Returns the admin public key in force (None before the box has keys).
        Called before every request and by the server's sweep: a session left
        idle is ended, and its keys wiped, without waiting for its next request.
        """
        current = self.keys_in_force.current()
        if current is None:
            return None
        for user in self.sessions.end_other_keys(current):
            self.services.audit.append(
                "system",
                "logout",
                user,
                {"reason": "rekey: the box's recording keys were replaced; log in again"},
                int(self.services.wall_us()),
            )
        return current

    def audit_checked(self):
        """The audit trail's :class:`ChainCheck`: its problems (an empty list: it verifies
        as far as it was checked), when the trail was last checked whole (wall µs; None:
        not yet since the web UI started), whether a whole check is under way, why
        the last one could not run (None: it ran), and why this call's check of the
        entries added since could not (None: it ran).

        The whole trail is checked at most every :data:`web.views.CHECK_STANDS_S`: hashing
        the 1.5 million entries of a box four years in service took 12 s (on the
        development host) on every visit to the audit page or the checklist. In between,
        each call checks only the entries added since the last one, chained on from the
        last entry it checked (:meth:`AuditLog.verify_after`); what either found stands
        until the next whole check. That check failing (a damaged or locked database)
        is logged and said (``since_failed``), never that the chain verifies, and raises
        the chain's alarm until a check of those entries, or a whole check, runs.

        When a whole check is due it runs in a background thread (:meth:`_check_whole`),
        and this call answers at once from the last whole check and the entries since:
        whoever visited first after ten minutes waited for it (6 to 10 s, more on a Pi).
        Its result replaces the last when it ends, a problem it finds with it. The first
        after the web UI starts too: the call answers at once that the trail is not
        checked yet (``checked_us`` None), never that it verifies; the first visitor
        waited 10 s for it on a box four years in service."""
        return self._chain_checked("audit", self.services.audit.verify_after)

    def deletions_checked(self):
        """The :class:`ChainCheck` of the deletion log, as :meth:`audit_checked` of the
        audit trail (``RetentionService.verify_after``): its page checked the 600 000
        entries of a box four years in service whole (8 to 13 s) at its first visit in
        every ten minutes and after every sweep."""
        return self._chain_checked("deletions", self.services.retention.verify_after)

    def _chain_checked(self, name, verify_after):
        """:meth:`audit_checked` of the chain ``name`` whose ``verify_after((seq, hash))``
        gives its problems after that entry and the last entry it checked."""
        now_us = int(self.services.wall_us())
        with self._check_locks[name]:
            done = self._checked.get(name)
            new = False
            if done is not None:  # before the first whole check ends, nothing to go on from
                try:
                    found, reached = verify_after(done[2])
                except Exception as exc:  # a damaged or locked database: said, not a 500
                    log.error("the %s chain's new entries could not be checked: %s", name, exc, exc_info=exc)
                    since_failed = "%s: %s" % (type(exc).__name__, exc)
                else:
                    since_failed = None
                    new = any(p not in done[1] for p in found)
                    done = (done[0], done[1] + [p for p in found if p not in done[1]], reached)
                    self._checked[name] = done
                # The alarm says it when it could not run, and no more once it runs again.
                new = new or since_failed != self._since_failed.get(name)
                self._since_failed[name] = since_failed
            due = done is None or not 0 <= now_us - done[0] <= CHECK_STANDS_S * 10**6
            if due and name not in self._whole_checks and not self.stopping.is_set():
                thread = threading.Thread(
                    target=self._check_whole,
                    args=(name, verify_after, now_us),
                    name="whole-check-" + name,
                    daemon=True,  # the web UI's stop does not wait for it
                )
                self._whole_checks[name] = thread
                thread.start()
            checking, failed = name in self._whole_checks, self._check_failed.get(name)
            since_failed = self._since_failed.get(name)
        if new:
            self._chain_alarm(name)
        if done is None:
            return ChainCheck([], None, checking, failed, since_failed)
        return ChainCheck(list(done[1]), done[0], checking, failed, since_failed)

    def chain_unreadable(self, name, reason):
        """A page found the chain ``name``'s database could not be read (``reason``):
        as a check of the entries added since that could not run, said on its pages and
        by its alarm until a check runs again (:meth:`audit_checked`). Whether the box
        has an alarm log to raise it in."""
        with self._check_locks[name]:
            self._since_failed[name] = reason
        self._chain_alarm(name)
        return self.services.alarms is not None

    def _check_whole(self, name, verify_after, started_us):
        """Check the chain ``name`` whole (in the background), then chained on from where
        it reached to the last entry (those added meanwhile): what it found replaces what
        the last whole check and the checks since found, and it stands from ``started_us``.
        A check that fails (not one the web UI's stop cut short) is logged, the pages say
        it could not run and why, and its alarm is raised (:meth:`_chain_alarm`); the next
        visit starts another."""
        try:
            try:
                problems, reached = verify_after((0, GENESIS_HASH))
                with self._check_locks[name]:
                    found, reached = verify_after(reached)
                    self._checked[name] = (
                        started_us,
                        problems + [p for p in found if p not in problems],
                        reached,
                    )
                    self._check_failed.pop(name, None)
                    self._since_failed.pop(name, None)  # every entry checked, to the last
            except Exception as exc:
                if self.stopping.is_set():
                    return
                log.error("the whole check of the %s chain failed: %s", name, exc, exc_info=exc)
                with self._check_locks[name]:
                    self._check_failed[name] = "%s: %s" % (type(exc).__name__, exc)
            self._chain_alarm(name)
        finally:
            with self._check_locks[name]:
                del self._whole_checks[name]

    def _chain_alarm(self, name):
        """Raise the alarm of the chain ``name`` (:data:`CHAIN_ALARMS`) while a check found
        it broken or its whole check (or that of the entries since) could not run, naming
        which (a new occurrence, mailed, when that changes); clear it once a whole check ran
        and found nothing, and the check of the entries since last ran. A chain nobody
        can check must not be silent: a change to it would go unseen."""
        alarms = self.services.alarms
        if alarms is None:
            return
        with self._alarm_lock:  # what it finds and the change in order: never a stale clear
            self._set_chain_alarm(alarms, name)

    def _set_chain_alarm(self, alarms, name):
        what = CHAIN_WORDS[name]
        with self._check_locks[name]:
            done = self._checked.get(name)
            failed = self._check_failed.get(name) or self._since_failed.get(name)
        if done is not None and done[1]:
            # The first problem (its page lists them all): a new occurrence when that changes.
            message = "%s does not verify: %s" % (what, done[1][0])
        elif failed is not None:
            message = "%s could not be checked (%s): a change to it would go unseen" % (what, failed)
        elif done is not None:
            message = None
        else:
            return  # nothing known yet
        try:
            alarms.set(
                CHAIN_ALARMS[name],
                message is not None,
                message=message or "",
                wall_us=int(self.services.wall_us()),
                renew=True,
            )
        except Exception as exc:  # the page still says it, and the log
            log.error("the %s alarm could not be set: %s", CHAIN_ALARMS[name], exc)

    def wait_whole_checks(self):
        """Wait for the whole checks under way to end (tests)."""
        for thread in list(self._whole_checks.values()):
            thread.join()

    def sweep(self):
        """The server's periodic clean-up: expired sessions, and those of old keys; what
        its start could not settle yet (:meth:`settle`); accounts unused for 90 days
        disabled (:func:`web.inactive.disable_unused`)."""
        self.end_sessions_of_old_keys()
        try:
            inactive.disable_unused(self)
        except Exception as exc:  # the next sweep, or the next login, tries again
            log.error(
                "the accounts unused for %d days could not be disabled now: %s", inactive.UNUSED_DAYS, exc
            )
        # A bundle nobody came back for is deleted, and its release audited as not made,
        # when its time is up: not at the next visit to a bundle's page, if there is one.
        self.sar_jobs.sweep()
        if self._unsettled:
            self.settle()
        return self.sessions.sweep()

    def settle(self):
        """Finish what a cut left half done (web/intent.py), at the start and then at each
        sweep until it has all been done. Each step that fails (the box's storage key not
        handed to this process yet, which the audit trail and the notes need) is logged and
        tried again at the next sweep; no change can be made meanwhile (each is audited)."""
        steps = (
            (prune_key_slots, "key slots without an account or beyond their lines"),
            (pwchange.settle, "password changes a cut left half made"),
            (sitechange.settle, "site settings that never reached the configuration"),
            (intent.settle_checked, "changes from a page, audited before a cut"),
            (intent.settle_rows, "web.db changes audited before a cut"),
            # After the pages' changes (whose checks compare mail.json as it stood):
            # recipients' accounts out of mail.json, which a release before refuses.
            (_migrate_mail, "alarm recipients' accounts kept in mail.json"),
            # (config.json: a box waiting for a consent notice, which that release refuses.)
            (_migrate_config, "the wait for a consent notice kept in config.json"),
            (lambda web: web.sar_jobs.settle(), "subject access bundles a cut left undownloaded"),
            # Last, once the settings are whole: words a `config import` changed, in effect now.
            (keep_notice_at_start, "the staff notice's words as the settings make them now"),
        )
        self._unsettled = False
        for step, what in steps:
            try:
                step(self)
            except Exception as exc:  # the next sweep tries again
                log.error("the web UI could not settle %s yet: %s", what, exc)
                self._unsettled = True

    def local_time(self):
        """A :class:`LocalTime` in the box's zone (:func:`~firmware.localtime.box_zone` of the
        site settings': Europe/London before they are saved).

        Read once per request: a page of calls dates each row, and reading the site
        settings for each (a query and a JSON parse) was a sixth of the page's time.
        Saving the settings forgets it (:meth:`Site.save`)."""
        in_request = has_request_context()
        if in_request and g.get("lk_local_time") is not None:
            return g.lk_local_time
        settings = self.site.settings()
        zone = box_zone(settings.time_zone if settings is not None else None)
        if getattr(self, "_local_time", None) is None or self._local_time.zone_name != zone:
            self._local_time = LocalTime(zone)
        if in_request:
            g.lk_local_time = self._local_time
        return self._local_time

    @property
    def n_lines(self):
        return len(self.services.status.snapshot()["lines"])

    def close(self):
        """Wait for the bundles being made, end every session and close web.db; a second
        close does nothing.

        A web.db the card refuses (damaged, unreadable, locked) cannot end the sessions'
        rows: that is logged, the next start ends them (:func:`create_app`), and the
        sessions' keys are forgotten and web.db closed all the same. It raised here, in
        place of what the process stopped with."""
        if self._closed:
            return
        self._closed = True
        self.sar_jobs.wait()
        try:
            self.sessions.clear_all()
        except Exception as exc:
            if not unreadable.is_unreadable(exc):
                raise
            log.error(
                "the sessions could not be ended in web.db as the web UI stopped (the next "
                "start ends them): %s",
                storage_error(exc, "web.db"),
            )
        finally:
            self.db.close()

    def _bundle_expired(self, entry_id, actor, why):
        """A subject access bundle deleted undownloaded: its release is audited as failed,
        by who made it (``actor``; None: the disclosure log's, for one a crash left)."""
        if actor is None:
            found = DisclosureLog(self.config.data_dir, getattr(self.services.audit, "cipher", None))
            try:
                entry = found.get(entry_id)
            finally:
                found.close()
            actor = entry["actor"] if entry is not None else "system"
        self.services.audit.append(
            actor,
            "disclosure",
            "disclosure:%d" % entry_id,
            {"failed": why},
            int(self.services.wall_us()),
        )


def prune_key_slots(web):
    """Remove the key slots of accounts that are not supervisors, and of no account (audited).

    Boxes set up before only supervisors held key slots gave installers one
    too: with it, an installer's password opened every recording offline.
    A slot with no account is what a new user's creation or removal cut short
    leaves (the slot is written before the account, and removed after it):
    nobody manages it, it would still open its lines, and the name could not be
    given to a new user. A supervisor's slot keeps only the lines their account
    has (:func:`_take_away_lines`). The box's last password slot is never
    removed (the key store refuses).
    """
    keystore = web.services.keystore
    if not web.site.setup_complete or not keystore.is_initialised:
        return  # (before setup, `linekeeper init`'s slot has no account yet)
    for name in keystore.slots():
        user = web.accounts.get(name)
        if user is not None and user.needs_key_slot:
            _take_away_lines(web, user)
            continue
        try:
            keystore.remove_slot(name)
        except KeyStoreError:
            continue
        details = {
            "reason": "only supervisors hold key slots"
            if user is not None
            else "no account: the user's creation or removal was cut short"
        }
        begun = _removal_begun(web.services.audit, name) if user is None else None
        if begun is not None:
            # A person's removal, audited before the cut: this entry finishes that one.
            details["finishes"] = begun
        web.services.audit.append("system", "key_slot_remove", name, details, int(web.services.wall_us()))


def _migrate_mail(web):
    """Move the alarm recipients' accounts, and a sender's display name, out of ``mail.json``
    (MailSettingsStore.migrate). A ``mail.json`` that cannot be read stays as it is: the
    E-mail page says why."""
    if web.services.mail is None:
        return
    from firmware.errors import ConfigError

    try:
        if web.services.mail.store.migrate():
            log.info("recipients' accounts or the sender's name moved from mail.json to their own files")
    except ConfigError as exc:
        log.error("mail.json left as it is: %s", exc.message)


def _migrate_config(web):
    """Move ``policy.consent.require_notice`` out of ``config.json`` (firmware.config's
    :func:`~firmware.config.move_require_notice`)."""
    from firmware.config import move_require_notice

    if web.services.box_config is None:
        return
    if move_require_notice(web.services.box_config.data_dir):
        log.info("the wait for a consent notice moved from config.json to its own file")


def _removal_begun(trail, name):
    """The number of a person's ``key_slot_remove`` entry for ``name``'s present slot
    (newer than the slot's making), which a cut left unfinished; None if there is none."""
    newest = {}
    for action in ("key_slot_remove", "key_slot_add"):
        for entry in trail.entries(limit=50, action=action):
            if entry.target == name and entry.actor != "system" and "refused" not in entry.details:
                newest[action] = entry.seq
                break
    removed = newest.get("key_slot_remove")
    return removed if removed is not None and removed > newest.get("key_slot_add", 0) else None


def _take_away_lines(web, user):
    """A supervisor's slot that still opens lines their account no longer has (a change
    of their lines cut short before the slot followed) loses them: lines taken away need
    no key. Lines their account has and the slot lacks wait for an installer's grant."""
    keystore = web.services.keystore
    granted = keystore.granted_lines(user.name)
    if not user.lines or granted == ALL_LINES:
        return  # (the admin key's grant, which the first supervisor holds, opens every line)
    if not set(granted) - set(user.lines):
        return
    keep = sorted(set(granted) & set(user.lines))
    try:
        keystore.set_lines(user.name, keep)
    except KeyStoreError:
        return
    web.services.audit.append(
        "system",
        "key_grant",
        user.name,
        {"lines": keep, "reason": "lines the account no longer has: a change of lines was cut short"},
        int(web.services.wall_us()),
    )


def _when(value):
    """A time for people, in the box's zone: µs since the epoch or an ISO 8601 UTC string."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = iso_to_us(value)
    return security.lk().local_time().when(value)


def _dates_in(text):
    """``text`` (an alarm's message) with its ISO dates and UTC times as the pages write them,
    in the box's zone (:meth:`firmware.localtime.LocalTime.dates_in`)."""
    return security.lk().local_time().dates_in(text)


def _ago(value):
    """``3 min ago`` (against the box's wall clock)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = iso_to_us(value)
    return LocalTime.ago(value, security.lk().services.wall_us())


def _bytes(n):
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return ("%d %s" if unit == "bytes" else "%.1f %s") % (n, unit)
        n /= 1000


class AsciiInt(IntegerConverter):
    """A URL's ``<int:...>`` in the digits 0-9 only. Werkzeug's took any script's digits
    (its pattern is ``\\d+``, and ``int()`` reads them): ``/calls/١`` opened call 1 and
    its look was audited as one at call 1. Any other text in that place is no page (404),
    as a number no row has is."""

    regex = r"[0-9]+"


def create_app(services, config):
    """Build the app around ``services`` (a :class:`Services`) with ``config``.

    All sessions left from an earlier run are ended: the unlocked keys they
    referred to were only ever in that process's memory.
    """
    if not isinstance(services, Services):
        raise TypeError("create_app needs a web.services.Services")
    if not isinstance(config, WebConfig):
        raise TypeError("create_app needs a web.services.WebConfig")
    app = Flask(__name__)
    app.url_map.converters["int"] = AsciiInt
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    web = Web(services, config)
    web.sessions.clear_all()
    web.settle()
    app.extensions["linekeeper"] = web
    for module in (
        auth,
        setup,
        dashboard,
        calls,
        audit,
        users,
        settings,
        rules,
        consent,
        retention,
        api,
        help,
        phonebook,
        reports,
        alarms,
        mail,
        documents,
        sar,
        rights,
        erasecalls,
        myline,
        updates,
        rekey,
    ):
        app.register_blueprint(module.bp)
    security.check_declared(app)

    app.before_request(_body_limit)
    app.before_request(security.before_request)
    app.after_request(security.after_request)
    app.jinja_env.finalize = card_free  # no card number typed comes back on a page
    app.jinja_env.filters["no_card"] = no_card  # a field given back, empty if one
    app.jinja_env.globals.update(
        csrf_token=security.csrf_token,
        state_label=lambda s: words.say("state", s),
        say=words.say,
        counted=words.counted,  # "1 call", "2 calls"
        # Its dates and times as the pages write them, in the box's zone (kept as written).
        alarm_text=lambda kind, message: _dates_in(words.alarm_text(kind, message)),
        dates_in=_dates_in,
        alarm_advice=words.alarm_advice,
        # A time a detail holds (enable-user's was_disabled_us) as the pages write times.
        audit_fields=lambda details, action=None: words.audit_fields(details, action, when=_when),
        audit_action=words.audit_action,
        audit_target=words.audit_target,
        zone_names=zone_names,
        role_labels=ROLE_LABELS,
        countries=countries.box_countries,
        regions=REGIONS,
        lawful_bases=LAWFUL_BASES,
        holidays_of=holidays_of,
        iso_us=_when,
        when=_when,
        ago=_ago,
        duration=duration_text,
        day_words=day_words,  # a calendar date (a request's due date) as the pages write dates
        days_words=days_words,  # a report's days: "Mon 2 Mar - Sun 8 Mar 2026"
        human_bytes=_bytes,
        iso_to_us=iso_to_us,
        cert_fingerprint=services.cert_fingerprint,
        product=config.product,
        signing_key=lambda: _signing_key(services),
        page_us=lambda: int(services.wall_us()),
        typed_back=typed_back,  # a refused form's field as typed, unless a card number
    )

    @app.context_processor
    def current():
        # The certificate's fingerprint changes when it is renewed while serving.
        site = web.site.settings()
        return {
            "user": g.get("user"),
            "site": site,
            "cert_fingerprint": services.cert_fingerprint,
            # A line as the mail names it, "line 2 (Office)" (words.line_said).
            "line_said": lambda n, start=False: words.line_said(
                n, site.line(n).name if site else None, start
            ),
            # A line as a pick list's choice names it, its long name cut short
            # (words.line_choice); ``lines_cut``: those of ``lines`` it cuts, named whole.
            "line_choice": lambda n: words.line_choice(n, site.line(n).name if site else None),
            "lines_cut": lambda lines: [
                words.line_said(n, site.line(n).name)
                for n in lines
                if site and words.line_choice(n, site.line(n).name) != words.line_said(n, site.line(n).name)
            ],
        }

    for code, title, message in (
        (400, "Bad request", "The request was not understood."),
        (401, "Log in first", "This needs you to be logged in."),
        (403, "Not allowed", "Your account's role does not allow this. Ask an installer if you need it."),
        (404, "Not found", "There is nothing here, or nothing you may see."),
        (405, "Not allowed", "That method is not allowed here."),
        (413, "Too large", "The form was too large."),
        (416, "Range not satisfiable", "The requested part of the recording does not exist."),
        (
            500,
            "Something went wrong",
            "The box could not answer this. What went wrong is in the box's log: try again, "
            "and if it happens again, tell your installer.",
        ),
        (501, "Not yet", "This is coming in a later release."),
    ):
        app.register_error_handler(code, _error_page(title, message, code))

    # A database damaged, unreadable or locked while the web UI runs: a page saying which.
    app.register_error_handler(sqlite3.Error, unreadable.handler)
    app.register_error_handler(OSError, unreadable.handler)

    @app.errorhandler(FieldSealError)
    def locked(exc):
        return render_template(
            "error.html",
            title="Personal data locked",
            message="The numbers, names and notes on this box are sealed with a key the HAT's "
            "MCU gives the recorder when it starts, and this process has no copy of it yet. "
            "Check that the recorder is running, then try again.",
        ), 503

    @app.errorhandler(LineKeyLostError)
    def key_lost(exc):
        # Not "damaged": nothing says it was altered (docs/keys.md, keystore restore).
        return render_template(
            "error.html",
            title="Recording cannot be opened",
            message="This recording cannot be opened: its line's recording key is not in the "
            "box's key store, which was put back from a backup made before that key. Nothing "
            "says it was altered. No one can play or export it; the command linekeeper verify, "
            "on the box's console, lists every such recording.",
        ), 409

    @app.errorhandler(TamperError)
    def tampered(exc):
        return render_template(
            "error.html",
            title="Recording damaged",
            message="This recording failed its integrity check: it was damaged or changed "
            "on the card, and none of it can be trusted. The command linekeeper verify, "
            "on the box's console, lists every problem.",
        ), 500

    return app


def _view():
    return current_app.view_functions.get(request.endpoint) if request.endpoint else None


def _signing_key(services):
    """``(fingerprint, where the private key is)`` of the box's signing key, or None."""
    from firmware.signing import SigningKeyError, fingerprint, read_public_record

    keys_dir = getattr(services.keystore, "keys_dir", None)
    if keys_dir is None:
        return None
    try:
        record = read_public_record(os.path.dirname(os.fspath(keys_dir)))
    except SigningKeyError:
        return None
    return record and (fingerprint(record["public_key"]), record["source"])


def _body_limit():
    """A view that takes uploads says how large (``view.max_content_length``); others 64 KiB."""
    limit = getattr(_view(), "max_content_length", None)
    request.max_content_length = limit or current_app.config["MAX_CONTENT_LENGTH"]


# The most of a refused body read to drop it: the edge passes on at most its max_body_bytes
# (6 MiB), and a large upload's own route takes what it sends.
_DROP_MOST_BYTES = 8 * 1024 * 1024


def _drop_unread_body():
    """Read and drop what is left of a body refused as too large, before answering.

    Why: the server closes the connection after the answer, and one closed with the body
    unread broke the edge's copy of it, which then dropped the answer: a WAV of 5.5 MB on the
    Consent page got an empty reply, not "larger than 5 MB"."""
    stream = request.environ.get("wsgi.input")
    try:
        left = min(int(request.environ.get("CONTENT_LENGTH") or 0), _DROP_MOST_BYTES)
    except ValueError:
        return
    while stream is not None and left > 0:
        chunk = stream.read(min(64 * 1024, left))
        if not chunk:
            return
        left -= len(chunk)


def _error_page(title, message, code):
    def handler(exc):
        # A view's own abort(code, description=...) message wins over the default.
        custom = getattr(exc, "description", None)
        if custom == getattr(type(exc), "description", None):
            custom = None
        if code == 413:
            _drop_unread_body()
            if getattr(_view(), "too_large", None) is not None:
                custom = _view().too_large()
        headers = exc.get_response().headers if hasattr(exc, "get_response") else {}
        extra = {k: v for k, v in headers.items() if k in ("Content-Range", "WWW-Authenticate")}
        if code in (401, 403) and request.path.startswith("/api/"):
            # The pages' scripts ask the API for JSON: a refusal they can read, not a page.
            return jsonify(error=custom or message), code, extra
        resp = render_template("error.html", title=title, message=custom or message)
        return resp, code, extra

    return handler
