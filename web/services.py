"""The narrow interface between the web layer and the box.

:func:`web.create_app` takes a :class:`Services` and a :class:`WebConfig`;
nothing in ``web/`` reaches into the box otherwise. Tests build one around
fakes or a simulated box; :func:`services_for_box` builds one around a
running :class:`firmware.box.Box`.
"""

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from typing import Any, Protocol

from firmware.alarms import health_alarms
from firmware.product import ProductInfo

from .passwords import DEFAULT_COST, HashCost
from .rekeyjob import box_rekey

log = logging.getLogger(__name__)


class LineStatusSource(Protocol):
    """:class:`firmware.calls.status.LineStatus`."""

    def snapshot(self) -> dict: ...
    def wait_for_change(self, version: int, timeout_s: float) -> int: ...


class CallQuery(Protocol):
    """:class:`firmware.calls.callsearch.CallSearch`."""

    def search(self, flt: Any, after: Any = None, limit: int = 50) -> tuple[list[dict], Any]: ...
    def get(self, call_id: int) -> dict | None: ...
    def legal_holds_of(self, ids: Any) -> dict[int, int]: ...
    def count(self, flt: Any, cap: int) -> tuple[int, bool]: ...


class RecordingService(Protocol):
    """What the web layer needs of recordings (issue 4 provides the real one).

    ``recording_info(call_id)``  ``{"state", "duration_s", "mime_type", "size",
                                 "legal_hold", "started_us"}`` or None when the
                                 call has no recording; ``size`` is the
                                 decrypted stream's length in bytes;
                                 ``started_us`` (optional) the wall time of its
                                 first sample, which places it on the call's
                                 timeline; ``speech`` (optional) the spans
                                 where someone spoke, ``[(from_s, to_s)]``
                                 from that first sample, or None;
                                 ``legal_hold_since`` and ``legal_hold_by``
                                 (optional) when the hold was placed (µs,
                                 wall time) and by whom, None when not held
    ``open_audio(call_id, key)`` a seekable binary file of the decrypted stream
                                 (decrypted on the fly as it is read), for the
                                 unlocked ``key`` (a RecordingKey); the caller
                                 closes it. Raises TamperError if the file is
                                 damaged.
    ``export(call_id, key, fmt)`` the audio as ``fmt`` ("ogg" or "wav"): bytes
                                 made in memory (never a file on the card)
    ``set_legal_hold(call_id, on, by)`` place or clear the hold of the person
                                 named ``by`` (the caller audits it)
    ``export_manifest(call_id, payload, file_name, user)`` the signed manifest
                                 (bytes, docs/FORMAT.md) of an export, or None
                                 when this process cannot sign
    """

    def recording_info(self, call_id: int) -> dict | None: ...
    def damaged(self, call_id: int) -> str | None: ...
    def open_audio(self, call_id: int, recording_key: Any) -> Any: ...
    def export(self, call_id: int, recording_key: Any, fmt: str) -> Any: ...
    def set_legal_hold(self, call_id: int, on: bool, by: str = "") -> None: ...
    def export_manifest(self, call_id: int, payload: bytes, file_name: str, user: str) -> bytes | None: ...


class RetentionService(Protocol):
    """:class:`firmware.policy.sweeper.RetentionSweeper`, as the retention pages use it.

    ``settings``                 the :class:`RetentionSettings` in force
    ``preview(settings=None)``   the recordings a sweep would delete now
                                 (under ``settings``, or the ones in force)
    ``held(settings=None)``      those it would delete but for a legal hold
    ``counts(candidates)``       ``{rule: n}``
    ``guard.suspended``          why automatic deletion is suspended, or None
    ``guard.last_passed_us``     wall time of the last sweep that could delete
    ``confirm_clock(actor, address)`` lift a suspension after a clock jump (audited,
                                 with ``address``: the client's, as the web UI's own
                                 entries carry it)
    ``deletion_log(limit, offset, after_seq=None, since_us=None, until_us=None)`` newest
                                 first; after entry ``after_seq`` oldest first, those
                                 deleted from ``since_us`` to before ``until_us`` (the CSV)
    ``deletion_count(since_us=None, until_us=None)``, ``verify()``
    ``verify_after(checked)``    the problems of the entries after ``checked``, ``(seq,
                                 hash)`` of the last entry an earlier check reached, and
                                 that of the last one checked now (the log's page)
    ``deletions_of_call(call_id)`` the deletion-log entries of one call
    ``active_alarms()``          kinds of the sweeper's alarms that are on
    ``last_disk_percent``        disk use at the last check, or None
    """

    settings: Any

    def preview(self, now_us: int | None = None, settings: Any = None) -> list: ...
    def held(self, now_us: int | None = None, settings: Any = None) -> list: ...
    def confirm_clock(self, actor: str, address: str = "") -> None: ...
    def deletion_log(
        self,
        limit: int = 100,
        offset: int = 0,
        after_seq: int | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
    ) -> list: ...
    def deletion_count(self, since_us: int | None = None, until_us: int | None = None) -> int: ...
    def verify(self) -> list: ...
    def verify_after(self, checked: tuple) -> tuple: ...


class LiveCallControl(Protocol):
    """What the web layer may do to calls in progress (:class:`firmware.policy.engine.CallPolicy`).

    ``pause(line, actor, address)`` pause the recording of the line's call (PCI DSS);
                             raises ``PolicyError`` (a ``ValueError``) when the
                             line has no call or is already paused
    ``resume(line, actor, address)`` resume it; ``PolicyError`` when it is not paused
    ``paused_lines()``       the lines paused now
    ``recording_lines()``    the lines whose call is being recorded now
    ``pausable_lines()``     the lines whose call a pause protects: recorded now,
                             or on demand and so maybe later, from its start (the
                             only ones the pause control is offered on)
    Both are audited by the box (actions ``pause`` / ``resume``, actor ``actor``, with
    ``address``: the client's, as the web UI's own entries carry it).
    """

    def pause(self, line: int, actor: str, address: str = "") -> None: ...
    def resume(self, line: int, actor: str, address: str = "") -> None: ...
    def paused_lines(self) -> list: ...
    def recording_lines(self) -> list: ...
    def pausable_lines(self) -> list: ...


def site_settings_applier(config_store, audit, wall_us):
    """An ``apply_settings`` that puts the site settings into the box's configuration.

    A line set "private" becomes policy mode ``never``; a line set "record"
    that was ``never`` becomes ``always`` (a line recorded by rule or on
    demand keeps its mode); a line "not connected" keeps its mode and goes in
    ``not_connected``; the country goes to ``config.json``. The change
    is saved atomically (0600), applied to the running box at once
    (``config_store``'s ``apply``) and audited as ``config_change`` of
    ``config`` by ``system`` (the page audits the person's change of the site
    settings itself).
    """

    def apply(settings):
        config = config_store.get()
        rules = config.policy.rules
        modes = {}
        for line in settings.lines:
            if line.line in settings.not_connected:
                continue  # never recorded as not connected (BoxConfig); its mode kept for its return
            want = (
                "never"
                if not line.record
                else ("always" if rules.mode(line.line) == "never" else rules.mode(line.line))
            )
            if want != rules.mode(line.line):
                modes[line.line] = want
        unplugged = sorted(settings.not_connected)
        if not modes and settings.country == config.country and unplugged == sorted(config.not_connected):
            return
        policy = dataclasses.replace(config.policy, rules=rules.with_modes(modes))
        config_store.save(config.replace(country=settings.country, policy=policy, not_connected=unplugged))
        details = {"source": "site settings", "lines": {str(n): m for n, m in modes.items()}}
        if settings.country != config.country:
            details["country"] = settings.country
        if unplugged != sorted(config.not_connected):
            details["not_connected"] = unplugged
        audit.append("system", "config_change", "config", details, wall_us())

    return apply


def notice_defaults_applier(config_store, audit, wall_us):
    """A ``setup_defaults`` that turns the consent notice on when setup completes.

    Telling callers and staff that calls may be recorded is the law's
    expectation (Interception by Businesses Regulations), so a box set up
    through the wizard announces inbound calls and beeps once on outbound
    ones, unless its configuration already says otherwise. The consent page
    changes it; the change is audited as ``config_change``.
    """

    def apply():
        config = config_store.get()
        consent = config.policy.consent
        if consent.inbound != "off" or consent.outbound != "off":
            return
        consent = dataclasses.replace(consent, inbound="announcement", outbound="tone")
        policy = dataclasses.replace(config.policy, consent=consent)
        config_store.save(config.replace(policy=policy))
        audit.append(
            "system",
            "config_change",
            "config",
            {"source": "setup", "consent": {"inbound": "announcement", "outbound": "tone"}},
            wall_us(),
        )

    return apply


# A page's save of the configuration while its lists of numbers are sealed and this process
# has no key yet (the recorder not started since boot): config.json is written whole, its
# lists sealed again, and they cannot be opened to be. Refused, nothing changed.
CONFIG_SEALED = (
    "Nothing was saved: the box's configuration keeps its lists of numbers sealed with the "
    "box's key, which is not open until the recorder has started since the box was switched "
    "on. Try again in a minute."
)


class BoxConfigStore:
    """The box's configuration for the pages that edit it.

    :meth:`get` reads ``DATA_DIR/config.json``; :meth:`save` writes a new,
    already validated :class:`firmware.config.BoxConfig` atomically and hands
    it to ``apply`` (the running box), so a change takes effect at once.
    """

    def __init__(self, data_dir, apply=None, cipher=None):
        self.data_dir = data_dir
        self._apply = apply
        self._cipher = cipher  # seals the rules' number patterns in the file

    @property
    def path(self):
        from firmware.config import config_path

        return config_path(self.data_dir)

    def get(self, leave_sealed=False):
        """The configuration, its rules' number patterns opened.

        ``leave_sealed``: for a page that neither shows nor matches the patterns. While
        this process has no key yet (the recorder not started since boot) they are left
        sealed (:func:`firmware.config.rules_sealed` says so) rather than refused: the
        rest of the configuration needs no key.

        :raises FieldSealError: the patterns are sealed and do not open now (not with
            ``leave_sealed``)
        """
        from firmware.config import load_config
        from firmware.storage.fieldseal import FieldSealError

        try:
            return load_config(self.data_dir, self._cipher)
        except FieldSealError as exc:
            if not leave_sealed:
                raise
            log.warning("the number rules are read sealed (%s)", exc)
            return load_config(self.data_dir)

    def outside_lines(self):
        """``{line: outside-line digit}`` (``policy.rules.lines``), read without the
        cipher (no sealed pattern is needed); {} when the file cannot be read (a number
        is then matched as dialled)."""
        from firmware.config import load_config
        from firmware.errors import ConfigError

        try:
            return load_config(self.data_dir).policy.rules.outside_lines()
        except (ConfigError, OSError):
            return {}

    def save(self, config):
        from firmware.config import save_config

        save_config(self.data_dir, config, self._cipher)
        if self._apply is not None:
            self._apply(config)


class BoxConsent:
    """The consent announcement for the consent page: listen, replace, play into a line.

    :param data_dir: the box's data directory (uploads go to ``announcements/``)
    :param config_store: a :class:`BoxConfigStore` (which announcement is configured)
    :param play: ``play(line, samples)`` into a line (the board's), or None: no test calls
    :param country: picks the spoken default's voice until the configuration is read
    """

    def __init__(self, data_dir, config_store, play=None, country="uk"):
        from firmware.policy.announcement import Announcements

        self.data_dir = data_dir
        self.config_store = config_store
        self._play = play
        self.announcements = Announcements(data_dir, country)

    @property
    def can_test_call(self):
        return self._play is not None

    def samples(self):
        """The configured announcement (8 kHz int16); raises AnnouncementError saying why not,
        espeak-ng not started included (an OSError, which the pages that ask said as a server
        error: firmware.policy.announcement says it as a reason). A cache not written (a full
        card) is no reason: the samples made in memory are played."""
        config = self.config_store.get(leave_sealed=True)
        # The spoken default's voice is the country's as saved now, as the recorder's is:
        # a country changed in Settings is heard at once, not after a restart.
        self.announcements.country = config.country
        return self.announcements.samples(config.policy.consent.announcement)

    def announcement_wav(self):
        from firmware.policy.announcement import wav_bytes

        return wav_bytes(self.samples())

    def store_announcement(self, name, data):
        """Check and keep an uploaded WAV; raises AudioFormatError (nothing kept) when refused."""
        from firmware.policy.announcement import store_announcement

        return store_announcement(self.data_dir, name, data)

    def test_call(self, line):
        """Play the announcement into ``line`` now; returns its length in seconds."""
        samples = self.samples()
        self._play(line, samples)
        return len(samples) / 8000


class StoreRecordings:
    """A :class:`RecordingService` over :class:`firmware.recording.store.RecordingStore`.

    Playback decrypts the call's newest recording into memory (a 10-minute
    voice call is about a megabyte) and serves it from there; the stream is
    authenticated chunk by chunk as it is decrypted. Legal holds are kept
    beside the call log (:class:`firmware.policy.callmeta.CallMeta`).

    :param wall_us: the box's wall time (µs), stamped on a hold
    :param signer: the device signer, which signs export manifests (None: not offered)
    """

    def __init__(self, store, wall_us=None, signer=None):
        from firmware.policy.callmeta import CallMeta

        self.store = store
        self.signer = signer
        self.meta = CallMeta(os.path.join(store.data_dir, "calls.db"))
        self._wall_us = wall_us or _wall_us

    def _row(self, call_id):
        row = self.store.for_call(call_id)
        return None if row is None or row["state"] == "deleted" else row

    def recording_info(self, call_id):
        from firmware.recording import codec

        row = self._row(call_id)
        if row is None:
            return None
        ogg = codec.file_extension(row["profile"]) == ".ogg"
        formats = ["ogg", "wav"] if ogg else ["wav"]
        signer = self.signer.get() if hasattr(self.signer, "get") else self.signer
        if signer is not None:
            formats += [f + ".zip" for f in formats]
        hold = self.meta.legal_hold(call_id)
        return {
            "state": row["state"],
            "formats": formats,  # what an export of it can be: the page offers only these
            "duration_s": row["duration_s"],
            "mime_type": "audio/ogg" if ogg else "audio/wav",
            "size": None,
            "legal_hold": hold is not None,
            "legal_hold_since": None if hold is None else hold["placed_at"],
            "legal_hold_by": None if hold is None else hold["placed_by"],
            "started_us": row["started_at"],
            "speech": self.store.speech_of(row["id"]),
            # Its line's key in no copy of the key store (a backup without it put back): why
            # it cannot be played or exported, or None.
            "key_lost": self.store.key_lost(row),
        }

    def damaged(self, call_id):
        """Why the call's recording file is not the one the box wrote (a card that damaged
        it, or an edit), as ``verify`` says it, or None. Reads the file, decrypts nothing."""
        row = self._row(call_id)
        if row is None:
            return None
        return "; ".join(self.store.file_problems(row)) or None

    def keys_lost_counts(self):
        """``{line: recordings}`` that cannot be opened, their line's key in no copy of the
        key store (:meth:`firmware.recording.store.RecordingStore.keys_lost_counts`)."""
        return self.store.keys_lost_counts()

    def open_audio(self, call_id, recording_key):
        import io

        from firmware.errors import TamperError
        from firmware.recording import codec

        row = self._row(call_id)
        if row is None:
            raise LookupError("call %d has no recording" % call_id)
        # Not this call's recording, or not as the box sealed it: nothing is played.
        problems = self.store.evidence_problems(row)
        if problems:
            raise TamperError("; ".join(problems))
        data, _complete = self.store.open_audio(row["id"], recording_key)
        return io.BytesIO(codec.finalize(data, row["profile"]))

    def export(self, call_id, recording_key, fmt):
        """The audio as ``fmt`` (bytes), made in memory: never a decrypted file on the card."""
        from firmware.recording import codec

        row = self._row(call_id)
        if row is None:
            raise LookupError("call %d has no recording" % call_id)
        ext = "." + fmt
        if ext != ".wav" and ext != codec.file_extension(row["profile"]):
            raise ValueError("this recording exports as WAV or %s" % codec.file_extension(row["profile"]))
        return self.store.export_bytes(row["id"], recording_key, fmt)

    def export_manifest(self, call_id, payload, file_name, user):
        """The signed manifest of an export of ``call_id`` (``payload`` its bytes), or None."""
        from firmware.manifest import build_manifest

        # A LazySigner (the web process) has the key only once the recorder made it.
        signer = self.signer.get() if hasattr(self.signer, "get") else self.signer
        row = self._row(call_id)
        if row is None or signer is None:
            return None
        return build_manifest(
            signer,
            payload,
            file_name,
            row,
            self.store.statement_of(row),
            user,
            int(self._wall_us()),
            handovers=getattr(self.store.verify_key, "statements", ()),
        )

    def set_legal_hold(self, call_id, on, by=""):
        """Place or clear the hold; a held call's recordings survive every deletion."""
        self.meta.set_legal_hold(call_id, on, by or "web", int(self._wall_us()))


def _wall_us() -> int:
    return time.time_ns() // 1000


@dataclasses.dataclass
class Services:
    """Everything the web UI uses of the box.

    ``status``      live line states (:class:`LineStatusSource`)
    ``calls``       call search (:class:`CallQuery`)
    ``keystore``    :class:`firmware.storage.keystore.KeyStore`
    ``audit``       :class:`firmware.storage.audit.AuditLog`
    ``recordings``  a :class:`RecordingService`, or None on a box that records
                    no audio yet (calls then show "no recording")
    ``health``      ``() -> {"disk_free_bytes", "disk_total_bytes",
                    "clock_synced", "alarms": [text, ...], "alarm_lines":
                    {text: line}, "card"}`` (``alarm_lines``: the line of each
                    alarm of one line, as :func:`firmware.alarms.health_alarms`
                    says it; ``card``: :func:`firmware.cardhealth.card_health`,
                    or None); beside a recorder of its own process also
                    ``"recorder"``: ``"running"``, or ``"down"`` when it did not
                    answer (the clock is then judged apart: :mod:`web.inactive`)
    ``apply_settings`` ``(SiteSettings) -> None``: called after the site
                    settings change (e.g. to write the country to config.json);
                    None to do nothing
    ``setup_defaults`` ``() -> None``: called once when the setup wizard
                    completes (turns the consent notice on); None to do nothing
    ``retention``   a :class:`RetentionService` (the box's sweeper), or None
    ``box_config``  a :class:`BoxConfigStore`, or None: the policy pages
                    then only show that there is no configuration to edit
    ``consent``     a :class:`BoxConsent`, or None (no announcement to manage)
    ``live``        a :class:`LiveCallControl` (PCI pause and resume), or None
    ``call_tags``   tags on calls (:class:`firmware.policy.callmeta.CallMeta`:
                    ``tags``, ``add_tags``, ``remove_tag``), or None: tags
                    are then shown but cannot be changed
    ``wall_us``     the box's time in µs since the epoch: every time the box
                    records or compares with what it recorded (audit entries,
                    accounts' creation, password change, disabling and enabling,
                    alarms, the card's days in service)
    ``session_clock_us`` real time in µs, only for what is measured as time
                    elapsed for people: session timeouts and login throttling
                    (their times are compared with each other only, never with
                    the box's records; a simulated box's clock may run faster
                    than real time, or stop when its scenario ends); tests
                    inject a clock
    ``cert_fingerprint`` the HTTPS certificate's SHA-256, shown in the UI
    ``reports``     a :class:`firmware.reports.source.ReportSource`, or None
    ``alarms``      the alarm history (:class:`firmware.alarmlog.AlarmLog`), or None
    ``mail``        a :class:`firmware.mail.service.MailService`, or None
    ``archive``     a :class:`firmware.archive.queue.ArchiveStatus` (``summary()``,
                    ``of(call_id)``), or None on a box without the archive
    ``updates``     the update inbox (:class:`firmware.update.inbox.UpdateInbox`),
                    or None: the updates page then says it cannot take updates
    ``slot_tampered`` ``(user, failure) -> None``: has the recorder raise the
                    ``key_tampered`` alarm for a right password whose key slot
                    failed (where ``alarms`` is None: the web beside a recorder)
    ``rekey``       a :class:`web.rekeyjob.RekeyJob` (the recorder re-keys), or
                    None: the rekey page then says to use ``linekeeper rekey``
    ``cipher``      the box's field cipher (:mod:`firmware.storage.fieldseal`):
                    web.db's phonebook and notes are sealed with it; None on a
                    box that does not seal (no MCU)
    ``date_checks`` the periodic round's :class:`firmware.alarmchecks.DateChecks`
                    that the web UI tells the site settings (the ICO renewal, the
                    reminders), or None (the box's, given to the web UI apart)
    """

    status: LineStatusSource
    calls: CallQuery
    keystore: Any
    audit: Any
    recordings: RecordingService | None = None
    health: Callable[[], dict] | None = None
    apply_settings: Callable[[Any], None] | None = None
    setup_defaults: Callable[[], None] | None = None
    retention: RetentionService | None = None
    box_config: BoxConfigStore | None = None
    consent: BoxConsent | None = None
    live: LiveCallControl | None = None
    call_tags: Any | None = None
    wall_us: Callable[[], int] = _wall_us
    session_clock_us: Callable[[], int] = _wall_us
    cert_fingerprint: str | None = None
    reports: Any = None
    alarms: Any = None
    mail: Any = None
    archive: Any = None
    updates: Any = None
    slot_tampered: Callable[[str, str], None] | None = None
    rekey: Any = None
    cipher: Any = None
    date_checks: Any = None


@dataclasses.dataclass(frozen=True)
class WebConfig:
    """How the web layer behaves.

    ``data_dir``         where web.db and the setup code live
    ``idle_timeout_s``   a session ends after this long without a request
    ``session_max_age_s`` and this long after login in any case
    ``secure_cookies``   False only for tests over plain HTTP
    ``sse_timeout_s``    how long one live-status stream lasts before the
                         browser reconnects (keeps server threads free)
    ``hash_cost``        Argon2id cost of new password hashes
    ``product``          the vulnerability contact and support period
                         (:class:`firmware.product.ProductInfo`)
    """

    data_dir: str
    idle_timeout_s: int = 15 * 60
    session_max_age_s: int = 12 * 3600
    secure_cookies: bool = True
    sse_timeout_s: float = 15.0
    hash_cost: HashCost = DEFAULT_COST
    product: ProductInfo = ProductInfo()


def disk_and_clock_health(data_dir, clock, alarms=None, card=None):
    """A ``health`` provider: free space where ``data_dir`` is, the clock, ``alarms()``,
    the card's wear (``card(data_dir)``, default :func:`firmware.cardhealth.card_health`
    at ``clock``'s wall time)."""

    def health():
        usage = shutil.disk_usage(data_dir)
        return with_card_health(
            {
                "disk_free_bytes": usage.free,
                "disk_total_bytes": usage.total,
                "clock_synced": bool(clock.synchronised),
            }
            | (health_alarms(alarms) if alarms is not None else {"alarms": [], "alarm_lines": {}}),
            data_dir,
            card,
            lambda: clock.wall_us(),  # (read only by the default card)
        )

    return health


def with_card_health(health, data_dir, card=None, wall_us=None):
    """``health`` with the card's wear under ``"card"``: ``card(data_dir)``, by default
    :func:`firmware.cardhealth.card_health` at ``wall_us()`` (the box's clock, µs: the
    days in service count from the audit trail's first entry, which that clock dated; the
    machine's clock when None). Its alarm is not added here: the recorder's round raises it
    in the alarm history (``card_wear``, :class:`firmware.cardhealth.CardWearCheck`),
    whence the health panel lists it, once."""
    if card is None:
        from firmware.cardhealth import card_health

        def card(data_dir):
            return card_health(data_dir, now_s=None if wall_us is None else int(wall_us()) / 1e6)

    health["card"] = card(data_dir)
    return health


def services_for_box(box, *, recordings=None, cert_fingerprint=None, alarms=None):
    """:class:`Services` for a running :class:`firmware.box.Box`.

    Uses ``box.keystore`` / ``box.audit`` when the box has them, and
    otherwise opens the key store and audit trail in the box's data
    directory. Recordings: ``recordings`` if given, else the box's
    ``RecordingStore`` (``box.recordings``) through :class:`StoreRecordings`.
    """
    from firmware.archive.queue import ArchiveStatus
    from firmware.calls.callsearch import CallSearch, ensure_indexes
    from firmware.policy.callmeta import CallMeta
    from firmware.storage.audit import AuditLog
    from firmware.storage.keystore import KeyStore

    data_dir = box.data_dir
    cipher = getattr(box, "cipher", None)
    config_store = BoxConfigStore(data_dir, getattr(box, "apply_config", None), cipher)
    calls_db = os.path.join(data_dir, "calls.db")
    ensure_indexes(calls_db)
    keystore = getattr(box, "keystore", None) or KeyStore(data_dir)
    audit = getattr(box, "audit", None) or AuditLog(
        os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), cipher=cipher
    )
    return Services(
        status=box.status,
        calls=CallSearch(calls_db, cipher),
        keystore=keystore,
        audit=audit,
        recordings=recordings
        if recordings is not None
        else (
            StoreRecordings(box.recordings, box.clock.wall_us, signer=box.signer)
            if getattr(box, "recordings", None) is not None
            else None
        ),
        retention=getattr(box, "retention", None),
        box_config=config_store,
        consent=BoxConsent(
            data_dir,
            config_store,
            getattr(getattr(box, "board", None), "play", None),
            getattr(getattr(box, "config", None), "country", "uk"),
        ),
        health=disk_and_clock_health(data_dir, box.clock, alarms or getattr(box, "alarms", None)),
        apply_settings=site_settings_applier(config_store, audit, box.clock.wall_us),
        setup_defaults=notice_defaults_applier(config_store, audit, box.clock.wall_us),
        live=getattr(box, "policy", None),
        call_tags=CallMeta(calls_db),
        wall_us=box.clock.wall_us,
        cert_fingerprint=cert_fingerprint,
        reports=getattr(box, "reports", None),
        alarms=getattr(box, "alarm_log", None),
        mail=getattr(box, "mail", None),
        archive=ArchiveStatus(calls_db) if _archive_enabled(box) else None,
        rekey=box_rekey(box) if hasattr(box, "rekey") else None,
        cipher=cipher,
    )


def _archive_enabled(box):
    settings = getattr(getattr(box, "config", None), "archive", None)
    return bool(getattr(settings, "enabled", False))
