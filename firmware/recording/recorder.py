"""The recorder: records every answered call of every line.

It listens on the bus for calls starting, being answered and ending, and
takes each line's audio from the capture readers. An inbound recording starts
``preroll_ms`` before the answer — the ring buffer still holds that audio — so
speech right after the answer is never clipped. An outbound recording starts
at off-hook: an analogue line's outbound call is "answered" when dialling
ends, which the supervisor can only tell seconds later (no digit follows);
starting then, however far back the pre-roll reached, would leave the first
seconds of the call off the card until that moment. Dial tone and digits are
therefore in the recording; an outbound call that never connects (off-hook,
nothing dialled) leaves no recording (one on legal hold is finished as any).
The recorder holds no secret: each recording's data key is wrapped to the box's
public key at once.

Disk space: before a recording starts, and before each chunk is written
(:class:`~firmware.recording.reserve.DiskReserve`), the recorder checks that
at least ``disk_reserve_bytes`` stay free for the call log. When they would
not, or when a write fails with ENOSPC anyway, the recording ends at once as
``partial`` (everything written so far kept) and an :class:`Alarm` of kind
``"disk_full"`` is published; the next recording that can start clears it.
Nothing is ever deleted to make room: that is the retention policy's decision.

Which calls are recorded: with ``auto=True`` every answered call (as
above); in the box the recording policy decides instead
(:mod:`firmware.policy`) and calls :meth:`Recorder.record` for the calls it
wants, from the moment it chooses (the ring buffer permitting). A call the
policy does not want is never opened here: no row, no file, none of its
audio leaves RAM. A call whose recording depends on lasting long enough
(``min_talk_us``) is *held*: encoded into memory
(:mod:`firmware.recording.held`) and only written once the call has talked
that long; a shorter call is dropped without a trace (unless it is on legal hold:
a hold's recordings survive every deletion, so what was held is written instead).
A recording on the card that may not be kept is stopped at once and destroyed by
a worker thread (:meth:`Recorder.discard`), so that the card's syncs do not hold
up the capture of every line. A box whose keys were
never initialised records nothing (and says so).

A call ended by the silence clear (``remote_silence``) may not be over: the
supervisor re-opens it if sound returns while our side is still off-hook
(:class:`~firmware.bus.CallResumed`; a hold, a handset laid down). Its
recording is therefore *parked*, not closed: it goes on taking the line's
audio, the same file, until the call resumes (nothing is missing from the
recording when the people speak again) or the line leaves the cleared state
(on-hook: the recording then ends there, so it also holds the quiet after the
call log's end).
"""

import collections
import contextlib
import errno
import logging
import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from firmware.bus import (
    Alarm,
    CallAnswered,
    CallEnded,
    CallResumed,
    CallStarted,
    LineStateChanged,
    RecordingFinished,
)
from firmware.calls.supervisor import CLEARED, CONNECTED, stored_number
from firmware.datadir import SQLITE_IOERR_SHMSIZE
from firmware.errors import DiskFullError, StorageError
from firmware.policy import cards
from firmware.recording import codec
from firmware.recording.activity import SpeechActivity
from firmware.recording.held import HeldPipeline
from firmware.recording.reserve import DiskReserve, free_bytes
from firmware.recording.segment import SyncGroup
from firmware.recording.stages import ChunkPolicy, RecordingPipeline
from firmware.recording.store import KEY_CONTEXT, KEY_COPY_SUFFIX, NOT_A_RECORDING, new_wrapped_key
from firmware.words import DISK_FULL_PLAIN

log = logging.getLogger(__name__)

SQLITE_FULL = 13
# With a reserve, a recording starts only with this much more free (about 15 minutes
# of voice): a disk at the reserve would otherwise make one-chunk recordings.
START_HEADROOM_BYTES = 1 << 20
ROW_RETRY_US = 5_000_000  # while the call log refuses a recording's row, try again this often
CALL_LOG_ALARM = "call_log"  # the kind the call log's own write alarm has (per line here)
RECORDING_FAILED = "recording_failed"  # a recording's failure, per line: an occurrence of its own
MAX_GAP_FILL_US = 60_000_000  # a longer hole in capture is not papered over with silence
# A held recording is released this long after its call reached the minimum talk time:
# the end of a call is confirmed after the fact (on-hook after the 150 ms pulse limit,
# a clear-down tone after the DSP's 500 ms block), so a call that ended just before the
# minimum may not be known to have ended yet.
HOLD_CONFIRM_US = 2_000_000
# A held recording whose call went quiet before its minimum talk is looked at again this
# often: the call may talk again, or the silence clear may end it where the quiet began.
HOLD_RECHECK_US = 1_000_000


class _Active:
    """One recording in progress."""

    def __init__(self, call, recording_id, pipeline, reserve, start_us):
        self.call = call
        self.recording_id = recording_id
        self.pipeline = pipeline
        self.reserve = reserve  # the DiskReserve stage, or None
        self.start_us = start_us  # clock time of the first sample
        self.next_us = start_us  # audio before this is already in the pipeline
        self.end_us = None  # set when the call ends
        self.timer = None
        self.parked = False  # ended by the silence clear: recording on until resumed or on-hook
        self.min_talk_us = 0  # > 0: held in memory until the call has talked this long
        self.manual = False  # held until release() (or dropped at the call's end)
        self.release_timer = None
        self.speech = SpeechActivity()  # when people spoke, for the call page's timeline
        self.dialled = None  # (number, digits_withheld) as its sealed header has them

    @property
    def held(self):
        return getattr(self.pipeline, "held", False)


class Recorder:
    """Record answered calls into ``store``.

    :param capture: the :class:`~firmware.capture.Capture` (rings and readers)
    :param store: the :class:`~firmware.recording.store.RecordingStore`
    :param clock: for wall times and the end-of-call timer
    :param bus: to publish :class:`~firmware.bus.Alarm` and, as each recording is
        sealed, :class:`~firmware.bus.RecordingFinished`
    :param public_key: the box's recording public key, None (not initialised),
        or a callable returning either: a box set up while running (the web
        setup wizard) starts recording without a restart
    :param line_key: ``fn(line) -> public key or None``: the key a line's
        recordings are wrapped to (the line's own, so that only the holders of
        that line's key open them); None wraps to ``public_key``
    :param preroll_ms: audio kept from before the answer
    :param flush_ms: the most audio that waits in memory before reaching the card
    :param profile: codec profile
    :param fsync: ``False`` only in tests and benchmarks
    :param disk_reserve_bytes: free space recordings must leave on the card
        (for the call log); 0 records until the disk is really full
    :param free: ``free(path) -> bytes`` (tests may pass another)
    :param auto: record every answered call by itself; ``False`` when a
        policy calls :meth:`record`
    :param delay_ms: how long each line's audio waits before it is encoded,
        so that the signalling detector, which hears it at the same time but
        decides up to a block later, can still have part of it silenced
        (:meth:`blank`: a PCI pause code, keyed digits); 0 encodes at once
    :param journal: the shared :class:`~firmware.recording.journal.Journal` every
        line's chunks are committed to (docs/journal.md); None syncs each
        line's file chunk by chunk
    :param holdup: the HAT's MCU warns of power cuts (``holdup_flush_ms``): a new
        file is created by its first chunk, just after the store synced the
        call log (:meth:`RecordingStore.before_file`), and its header is synced
        with that chunk, not on its own; the lines' chunks are on a shared
        grid, and the files written in one capture pass are synced together at
        its end (a :class:`SyncGroup`, docs/holdup-writes.md); a journal then
        takes only the recordings' seals
    """

    END_GRACE_US = 500_000

    def __init__(
        self,
        capture,
        store,
        clock,
        bus,
        public_key,
        *,
        preroll_ms=1000,
        flush_ms=1000,
        profile="voice",
        fsync=True,
        disk_reserve_bytes=0,
        free=free_bytes,
        auto=True,
        delay_ms=0,
        line_key=None,
        journal=None,
        holdup=False,
        country=lambda: "uk",
    ):
        self.capture = capture
        # () -> the box's country now: the plan the header's number is judged in.
        self.country = country
        self.journal = journal
        self.holdup = holdup
        # Chunks end on a clock grid shared by the lines (see _first_chunk_ms).
        self.grid = journal is not None or holdup
        # Under a hold-up capacitor: the files whose chunk was written in a capture
        # pass, synced together at its end (_sync_pass); a journal takes only seals.
        self.sync_group = SyncGroup() if holdup and fsync else None
        self._gathering_us = None  # clock time the group's oldest waiting chunk was seen
        self.store = store
        self.clock = clock
        self.bus = bus
        self._public_key = public_key
        self._public_key_source = public_key  # what the key cache is filled from again
        self._line_key = line_key
        self.preroll_us = preroll_ms * 1000
        self.flush_ms = flush_ms
        self.profile = codec.get_profile(profile).name
        self.fsync = fsync
        self.disk_reserve_bytes = int(disk_reserve_bytes)
        self._free = free
        self.auto = auto
        self.rate = capture.rate
        frame = codec.Encoder(self.profile, self.rate).frame_samples
        self.frame_us = frame * 1_000_000 // self.rate
        # The chunk length the pipelines get. With the group sync a chunk may wait up
        # to a frame for the other lines' (see _sync_pass): one frame less, so that no
        # audio waits longer than flush_ms (and the delay line) to be on the card.
        frame_ms = frame * 1000 // self.rate
        self.chunk_flush_ms = flush_ms
        if self.sync_group is not None and flush_ms >= 2 * frame_ms:
            self.chunk_flush_ms = flush_ms - frame_ms
        # The audio in every chunk but the last (what recovery counts with).
        self.chunk_ms = (
            ChunkPolicy(self.chunk_flush_ms).samples_per_chunk(self.rate, frame) * 1000 // self.rate
        )
        self._lock = threading.RLock()
        self._active = {}
        # ``f(call)``: ``(why, skip)`` when a recording whose call ended may not be kept
        # after all (the policy's: its call ended during its consent notice), asked as it
        # is closed: it is then destroyed as discard(call, why, skip) would. None, or
        # returning None: finished as any.
        self.unkept = None
        self.delay_us = int(delay_ms) * 1000
        self._delays = {line: _DelayLine() for line in capture.lines}
        self._unfinished = []  # (recording_id, state, duration_s, speech) the database refused
        # recording_id -> (line, store.begin's arguments): intent rows the database
        # refused while the file records on (written before the row is finished)
        self._unbegun = {}
        self._row_retry = None  # the timer that retries them
        # recording_id -> (call, why, info, speech spans): recordings whose destruction the
        # card refused to record (_defer_destruction), and the timer that tries again
        self._undecided = {}
        self._undecided_retry = None
        # recording_id -> line: the destructions _defer_destruction raised the line's
        # recording_failed alarm for, not yet done (decided and destroyed, or kept by a hold).
        # line -> whether the last recording_failed raised there was such a destruction's:
        # the alarm then goes off once every one of the line's is done, and only then
        # (_destruction_done); another failure's stays on. Under _failed_lock, as the worker
        # ends destructions while the capture thread raises alarms.
        self._deferred_lines = {}
        self._failed_by_deferral = {}
        self._failed_lock = threading.RLock()
        # Destroys the recordings whose destruction the store decided (_destroy), away from
        # the capture thread; started by the first, drained and stopped by close().
        self._shredder = None
        # (future, resumable) of each destruction handed to it and not done when the last
        # was handed on; resumable: its row on the card says so, and the next start does it.
        self._shreds = []
        self._stopping_shredder = None  # left running by close(cancel_destructions=True)
        self._disk_full = False
        self.stats = {
            "recordings": 0,
            "partial": 0,
            "bytes_written": 0,
            "bytes_stored": 0,
            "dropped_short": 0,
        }
        # ``f(recording_id, data_key)``: the archive's escrow (local disk only, never the network).
        self.on_data_key = None
        # The box's field cipher: the header's number and name sealed as in the call log.
        self.field_cipher = None

    @property
    def in_progress(self):
        """How many recordings are open now."""
        return len(self._active)

    @property
    def public_key(self):
        key = self._public_key
        if callable(key):
            key = key()
            if key is not None:
                self._public_key = key  # the box's key never changes once made
        return key

    @contextlib.contextmanager
    def keys_held(self):
        """No recording starts while this is held (a rekey puts new keys in force).

        A recording about to start waits (its audio is in the capture ring
        meanwhile); one already open carries on. On leaving, the cached public
        key is dropped, so the next recording is wrapped to the keys then in force.

        :raises StorageError: a recording's row is still waiting for the card
            (it would be written with a key wrapped to the old keys): try later
        """
        with self._lock:
            for recording_id in list(self._unbegun):
                try:
                    self._write_begun(recording_id)
                except sqlite3.Error as exc:
                    raise StorageError(
                        "the call log still refuses recording %s's row (%s): the keys were not "
                        "changed; try again once the card takes it" % (recording_id, exc)
                    ) from None
            try:
                yield
            finally:
                self._public_key = self._public_key_source

    def _recipient(self, line):
        """The public key line ``line``'s next recording is wrapped to."""
        if self._line_key is not None:
            key = self._line_key(line)
            if key is not None:
                return key
        return self.public_key

    @property
    def enabled(self):
        return self.public_key is not None

    def attach(self, bus):
        if self.journal is not None and self.sync_group is None:
            # Group commit: what every line wrote in one pass over the rings is
            # committed at once, and chunks end on a grid shared by the lines
            # (see _first_chunk_ms), so they all land in the same pass.
            self.journal.deferred = True
            self.capture.after_each_drain(self._commit)
        elif self.sync_group is not None:
            # The same for the files under a hold-up capacitor: the lines' chunks
            # complete in the same pass (the shared grid), and are synced together.
            self.capture.after_each_drain(self._sync_pass)
        if self.auto:
            bus.subscribe(CallStarted, self._started)
            bus.subscribe(CallAnswered, self._answered)
        bus.subscribe(CallEnded, self._ended)
        bus.subscribe(CallResumed, self._resumed)
        bus.subscribe(LineStateChanged, self._line_state)
        for line in self.capture.lines:
            self.capture.add_consumer(line, self._consumer(line))

    def _commit(self):
        """Commit what the lines handed the journal in this pass (one write, one sync)."""
        try:
            self.journal.commit()
        except OSError as exc:
            # The chunks wait in memory (the writers', and staged again in the journal,
            # whose next commit writes them): only a crash before then costs them.
            log.error("the recording journal cannot be written (tried again with the next pass): %s", exc)

    def _sync_pass(self, force=False):
        """Sync the files whose chunk was written, together (one commit of ext4's journal
        for all, not one each); a file whose sync fails ends ``partial``.

        At the end of each capture pass. The chunks of a recording off the frame
        grid (its line's ring did not reach back to the grid) end up to a frame
        before the grid point (see
        :meth:`_first_chunk_ms`): while another line's chunk is due within a
        frame, the group waits for it (two frames at most; ``force``: not at all).
        """
        with self._lock:
            if not len(self.sync_group):
                self._gathering_us = None
                return
            now_us = self.clock.now_us()
            if self._gathering_us is None:
                self._gathering_us = now_us
            if not force and now_us - self._gathering_us < 2 * self.frame_us and self._chunk_due_soon():
                return
            self._gathering_us = None
            for writer, exc in self.sync_group.sync():
                for active in list(self._active.values()):
                    if getattr(active.pipeline, "writer", None) is writer:
                        self._stop(active, exc)

    def _chunk_due_soon(self):
        """Whether a recording with no chunk waiting completes one within a frame."""
        frame = self.frame_us * self.rate // 1_000_000
        for active in self._active.values():
            writer = getattr(active.pipeline, "writer", None)
            if writer is None or writer.closed or writer in self.sync_group:
                continue
            if active.pipeline.state == "recording" and active.pipeline.encoder.due_samples <= frame:
                return True
        return False

    def _aligned_us(self, call, want_us):
        """``want_us``, moved on to the encoder's frame grid when chunks are group-committed
        (the journal's group commit, or the hold-up path's shared sync).

        A pre-roll moves later, never earlier (by less than one frame): a
        pre-roll up to a frame shorter, rather than one older than the second a
        crash may cost. A recording from the call's start (off-hook, or a call
        answered within its pre-roll) moves earlier instead, by less than a
        frame of the line's audio from just before the call (the idle line):
        no dialled digit may be lost, and its first chunk, whole frames up to
        the next grid point, is then no longer than any other, so none of its
        audio waits longer for the card. Its chunks land in the same commit as
        every other line's (docs/journal.md).
        """
        if not self.grid:
            return want_us
        if want_us <= call.started_us:
            return want_us - want_us % self.frame_us
        return want_us + (-want_us) % self.frame_us

    def _first_chunk_ms(self, start_us):
        """The first chunk's audio for a recording from clock time ``start_us``: whole
        frames up to the next multiple of the chunk length, so that every later
        chunk of every line ends on the same grid (and lands in the same commit, or
        the same sync pass under a hold-up capacitor). None without a journal or
        hold-up (every chunk whole).

        A start off the frame grid (the line's ring did not reach back to it,
        after a gap in capture) cannot end on it: its chunks end up to a frame
        after each grid point, or under a hold-up capacitor up to a frame before
        it, where the group's sync waits for the other lines (:meth:`_sync_pass`)
        without any chunk waiting longer."""
        if not self.grid:
            return None
        grid_us = self.chunk_ms * 1000
        to_grid_us = grid_us - start_us % grid_us
        if self.sync_group is not None:
            frames = to_grid_us // self.frame_us or (to_grid_us + grid_us) // self.frame_us
        else:
            frames = max(1, -(-to_grid_us // self.frame_us))
        return min(self.chunk_ms, frames * self.frame_us // 1000)

    # ------------------------------------------------------------ call events
    def _started(self, ev):
        if ev.call.direction == "out":
            self._begin(ev.call, ev.call.started_us)

    def _answered(self, ev):
        self._begin(ev.call, max(ev.call.answered_us - self.preroll_us, ev.call.started_us))

    def record(self, call, from_us, min_talk_us=0, hold=False):
        """Record ``call`` with its line's audio from clock time ``from_us`` on.

        Audio from before now comes from the line's ring buffer, as far back as
        it reaches (and never from before a gap in capture). With
        ``min_talk_us`` the recording is held in memory until the call has
        talked that long (from its answer), and dropped if it ends sooner;
        with ``hold`` it is held until :meth:`release` (dropped if the call
        ends first). Recording a call already being recorded does nothing.
        Failures to start raise an :class:`Alarm` instead of an exception.
        """
        self._begin(call, from_us, min_talk_us, hold)

    def release(self, call, min_talk_us=0):
        """Let a recording held with ``hold=True`` reach the card (a minimum talk still
        applies: the one it was held with, or ``min_talk_us`` if longer)."""
        with self._lock:
            active = self._active.get(call.line)
            if active is None or active.call is not call or not active.held:
                return
            active.manual = False
            active.min_talk_us = max(active.min_talk_us, int(min_talk_us))
            if active.min_talk_us and call.answered_us is not None:
                if active.release_timer is None:
                    active.release_timer = self.clock.call_at(
                        call.answered_us + active.min_talk_us + HOLD_CONFIRM_US,
                        lambda: self._release_held(active),
                    )
                return
            self._release_held(active)

    def discard(self, call, why=None, skip=None):
        """Stop recording ``call`` and keep nothing of it (a held recording was never written).

        ``why``: the reason the audit entry of a recording already on the card gives for
        its deletion (None: it turned out not to be a call). ``skip``: the policy does not
        record the call, and this is its ``policy_reason``: the call says ``skip`` with it
        on the card in the transaction that decides the destruction, and in memory from
        then (:meth:`_unkeep`). False when the store refuses
        the destruction, its call on legal hold (:meth:`RecordingStore.unname_file`, where
        a hold placed at any time before is seen): the recording goes on as it was. A
        recording held in memory whose call is on legal hold is written to the card
        instead of dropped, and goes on there (False too).

        Once the store has decided, the recording stops here and its file is destroyed
        by the recorder's worker thread (:meth:`_destroy`): the syncs of the destruction
        do not hold up the capture of every line. A card that refuses the destruction
        raises the ``recording_failed`` alarm of the call's line, and the next start
        finishes it (:meth:`RecordingStore.recover`). A recording whose row is still
        waiting in memory (the call log refused it) gets it first; refused again, it has
        no row to record the decision, and is destroyed at once (:meth:`_destroy`). A card
        that refuses the decision itself stops the recording all the same: the decision
        waits in memory for the card, the ``recording_failed`` alarm saying so
        (:meth:`_defer_destruction`).
        """
        with self._lock:
            active = self._active.get(call.line)
            if active is None or active.call is not call:
                return True
            if active.held:
                return self._drop_unless_held(active, short=False) is None
            why = why or NOT_A_RECORDING
            try:
                # A row still waiting in memory (the call log refused it) is written first,
                # so that the decision below is on the card as any recording's: with no row,
                # nothing tells the next start or `linekeeper repair` that its file, whose
                # sealed header names the call, is to be destroyed, not rebuilt.
                self._write_begun(active.recording_id)
            except sqlite3.Error as exc:
                log.warning("the call log still refuses recording %s: %s", active.recording_id, exc)
            return self._unkeep(active, why, skip)

    def _unkeep(self, active, why, skip=None):
        """Decide the destruction of ``active``, whose call keeps nothing of it (``why``),
        and hand it to the worker (:meth:`_destroy`). False when its call is on legal hold:
        nothing changed.

        ``skip`` (the call's ``policy_reason``, the policy not recording it): the call says
        ``skip`` in the same transaction as the decision (:meth:`RecordingStore.unname_file`),
        so that no crash between the two leaves a call saying ``record`` whose recording
        the next start destroys. Not before it either: a call saying ``skip`` whose
        recording's row still names its file would have it kept, as ``partial``, by the
        next start. The call in memory says it from inside that transaction, so that the
        call log does not write the ``record`` it had back over it before the policy
        decides.

        A card that refuses the decision (:meth:`RecordingStore.unname_file`) does not make
        the recording a kept one: it stops and waits for the card (:meth:`_defer_destruction`)."""
        call = active.call
        before = (call.policy_decision, call.policy_reason) if skip is not None else None
        try:
            decided = self.store.unname_file(
                active.recording_id, call.id, why, skip=skip, decided=_skipping(call, skip)
            )
        except sqlite3.Error as exc:
            if before is not None:  # refused at its commit: as it was, until the note is on the card
                call.policy_decision, call.policy_reason = before
            self._defer_destruction(active, why, exc, skip)
            return True
        if decided:
            self._destroy(active, why)
        return decided

    def _defer_destruction(self, active, why, exc, skip=None):
        """The card refused the decision to destroy ``active`` (``exc``): the recording stops
        and is sealed (kept whole should its call be on legal hold after all), its row still
        says ``recording``, and the decision waits in memory, tried again every
        ``ROW_RETRY_US`` and at the stop (:meth:`_retry_destructions`). The line's
        ``recording_failed`` alarm says the recording is still on the card meanwhile (the
        call log says the call was not recorded), and goes off once it is done
        (:meth:`_destruction_done`). The decision is also noted beside the call
        log (:meth:`RecordingStore.note_discard`): a box that stops or dies before the card
        takes it leaves it to the next start, which decides and does it
        (:meth:`RecordingStore.recover`), the call's ``skip`` (its reason) with it. Only if
        the card refuses that note too does the next start make the recording a partial one,
        as any cut short."""
        call = active.call
        log.error("the card refused the destruction of recording %s: %s", active.recording_id, exc)
        del self._active[call.line]
        if active.timer is not None:
            active.timer.cancel()
        try:
            active.pipeline.close()
        except OSError as err:
            log.error("recording %s to be destroyed could not be sealed: %s", active.recording_id, err)
            active.pipeline.abort()
        info = active.pipeline.info()
        self._undecided[active.recording_id] = (call, why, skip, info, active.speech.spans())
        when = "at the stop, and at the next start"
        try:
            self.store.note_discard(active.recording_id, call.id, why, skip)
        except OSError as err:
            when = "and at the stop; a box stopped before then keeps it as a partial recording"
            log.error(
                "the card refused the note of recording %s's destruction too (%s): if the box "
                "stops before the card takes the decision, the next start keeps it as a partial "
                "recording",
                active.recording_id,
                err,
            )
        if self._undecided_retry is None:
            self._undecided_retry = self.clock.call_later(ROW_RETRY_US, self._retry_destructions)
        with self._failed_lock:
            self._alarm(
                call.line,
                RECORDING_FAILED,
                True,
                "the card refused the decision to destroy what was recorded of call %s (%s): %s. "
                "The recording is still on the card; it is destroyed once the card takes the "
                "decision (tried again every %d s, %s)"
                % (call.id, _message(exc), why, ROW_RETRY_US // 1_000_000, when),
                call,
            )
            self._deferred_lines[active.recording_id] = call.line
            self._failed_by_deferral[call.line] = True

    def _destruction_done(self, recording_id):
        """The destruction of ``recording_id`` that :meth:`_defer_destruction` raised its
        line's ``recording_failed`` alarm for is over: destroyed, kept by a legal hold placed
        meanwhile, or not destroyed after all (:meth:`_shred` raised the alarm again, saying
        why). The alarm goes off when its cause is gone: no other such destruction of the
        line waits, and the last ``recording_failed`` raised on the line was one of theirs
        (another failure's, raised since, stays on). The alarm history kept the occurrence
        as it was raised, as every ``recording_failed`` (an occurrence of its own)."""
        with self._failed_lock:
            line = self._deferred_lines.pop(recording_id, None)
            if line is None or line in self._deferred_lines.values():
                return
            if self._failed_by_deferral.pop(line, False):
                self._alarm(
                    line,
                    RECORDING_FAILED,
                    False,
                    "the card took the decision: no recording waits for it on the line any more",
                )

    def destruction_waits(self, call):
        """Whether the destruction of ``call``'s recording waits for the card to take its
        decision (:meth:`_defer_destruction`): stopped, still on the card meanwhile."""
        with self._lock:
            return any(waiting is call for waiting, *_ in self._undecided.values())

    def _retry_destructions(self):
        """Decide again the destructions the card refused (from a timer, and at the stop)."""
        with self._lock:
            self._undecided_retry = None
            for recording_id, (call, why, skip, info, speech) in list(self._undecided.items()):
                try:
                    self._write_begun(recording_id)
                    decided = self.store.unname_file(
                        recording_id, call.id, why, skip=skip, decided=_skipping(call, skip)
                    )
                except sqlite3.Error as exc:
                    log.warning("the card still refuses to destroy recording %s: %s", recording_id, exc)
                    continue
                del self._undecided[recording_id]
                try:
                    self.store.forget_discard(recording_id)
                except OSError as exc:  # the next start finds it decided, and drops the note
                    log.warning("the note of recording %s's destruction stays: %s", recording_id, exc)
                if decided:
                    log.info("the card took the destruction of recording %s (call %s)", recording_id, call.id)
                    self._to_shredder(recording_id, why, call)
                else:  # on legal hold since: kept, finished as any recording
                    log.info(
                        "recording %s (call %s) is kept: its call is on legal hold", recording_id, call.id
                    )
                    self._finish(recording_id, info["state"], info["duration_s"], speech)
                    self._destruction_done(recording_id)
            if self._undecided:
                self._undecided_retry = self.clock.call_later(ROW_RETRY_US, self._retry_destructions)

    def _destroy(self, active, why):
        """Stop ``active``, whose destruction the store decided (:meth:`RecordingStore.unname_file`),
        and hand the destruction of its file and row to the worker thread (``why``: what
        its ``recording_deleted`` audit entry says).

        A crash before the worker is done leaves a row that names no file: the next
        start destroys the file and the row (:meth:`RecordingStore.recover`). A recording
        whose row the call log refused again (:meth:`discard`) has none to say so: it is
        destroyed here, and a card refusing that too leaves files the alarm names."""
        del self._active[active.call.line]
        if active.timer is not None:
            active.timer.cancel()
        # Nothing more written or synced of it here (abort would finish the file for the
        # destruction to overwrite): the card's work is the worker's.
        active.pipeline.discard()
        if self._forget_row(active.recording_id):
            # No row names it (the call log refused it): nothing would tell the next start
            # to destroy the file, which `linekeeper repair` would make a recording again
            # from its sealed header. Destroyed at once, in this rare case, on this thread.
            self._shred(active.recording_id, why, active.call, row=False)
            return
        self._to_shredder(active.recording_id, why, active.call)

    def _shred(self, recording_id, why, call, row=True):
        """The worker's part of :meth:`_destroy`: the file (its header and key copy
        overwritten, synced, removed), then the row, audited ``recording_deleted``.
        ``row``: False for a recording the call log has no row of (see :meth:`_destroy`)."""
        try:
            self.store.shred_file(recording_id, audit=False)
            self.store.drop(recording_id, why)
        except Exception as exc:  # in the worker: said, never left in its future
            log.exception("recording %s of call %s could not be destroyed", recording_id, call.id)
            if row:
                # Its row names no file (unname_file): the next start destroys both.
                then = "the next start destroys it"
            else:
                # Nothing on the card says its destruction was decided: the next start takes
                # the file for one the call log lost, and repair rebuilds it from its header.
                then = (
                    "the call log has no row of it to say its destruction was decided, and its "
                    "file %s and key copy %s may still be on the card: the next start refuses to "
                    "start on them, and `linekeeper repair` would make them a recording again. "
                    "With the box stopped, overwrite and remove both (shred -u) before starting "
                    "it or running repair (docs/recovery.md)"
                    % (self.store.path_of(recording_id), self.store.key_copy_path(recording_id))
                )
            self._alarm(
                call.line,
                RECORDING_FAILED,
                True,
                "what was recorded of call %s could not be destroyed (%s): %s"
                % (call.id, _message(exc), then),
                call,
            )
        # A destruction the card had refused to decide: its alarm goes off now it is done
        # (and stays on when it is not: the alarm just raised says why).
        self._destruction_done(recording_id)

    def recording(self, call):
        """Whether ``call`` is being recorded (or held)."""
        with self._lock:
            active = self._active.get(call.line)
            return active is not None and active.call is call

    def _begin(self, call, want_us, min_talk_us=0, hold=False):
        """Start recording ``call`` with its line's audio from clock time ``want_us``."""
        if not self.enabled:
            return
        with self._lock:
            self._retry_unfinished()
            previous = self._active.get(call.line)
            if previous is not None:
                if previous.call is call:
                    return
                self._close(previous)  # the last call's grace period was still running
            from_us = self._aligned_us(call, want_us)
            samples, start_us = self._preroll(
                self.capture.lines[call.line], from_us, self._delays[call.line].head_us()
            )
            samples = self._blanked(call.line, samples, start_us)
            if hold or (min_talk_us and call.answered_us is not None):
                active = self._hold(call, start_us, min_talk_us, hold)
                self._active[call.line] = active
                if len(samples):
                    self._feed(active, samples, start_us)
                return
            try:
                active = self._open(call, start_us)
            except DiskFullError as exc:
                self._disk_full_alarm(call.line, True, _message(exc))
                return
            except OSError as exc:
                log.error("cannot start recording call %s: %s", call.id, exc)
                self._alarm(call.line, RECORDING_FAILED, True, _message(exc), call)
                return
            self._active[call.line] = active
            if len(samples):
                self._feed(active, samples, start_us)

    def _preroll(self, audio, want_us, limit_us=None):
        """``(samples, t_us)``: what the line's ring holds from ``want_us`` to now
        (to ``limit_us``, if given: later audio is still in the delay line).

        Only the newest contiguous run is used: before a gap in capture the
        ring holds older audio that does not belong to this call.
        """
        samples, start_us = self._ring_preroll(audio, want_us)
        if limit_us is not None:
            keep = max(0, (limit_us - start_us) * self.rate // 1_000_000)
            if keep < len(samples):
                samples = samples[:keep]
        return samples, start_us

    def _ring_preroll(self, audio, want_us):
        ring = audio.ring
        end_pos = ring.written
        if not end_pos:  # nothing captured yet: the audio is still to come
            return np.zeros(0, np.int16), want_us
        end_us = audio.time_of(end_pos)
        want = (end_us - want_us) * self.rate // 1_000_000 * 2
        if want <= 0:
            return np.zeros(0, np.int16), want_us
        data = ring.preroll(min(want, ring.capacity))
        start = end_pos - len(data)
        if not self._contiguous(audio, start, end_pos):
            lo, hi = start, end_pos  # lo: not contiguous to the end; hi: contiguous
            while hi - lo > 2:
                mid = (lo + hi) // 2 & ~1
                if self._contiguous(audio, mid, end_pos):
                    hi = mid
                else:
                    lo = mid
            data, start = data[hi - start :], hi
        return np.frombuffer(data, dtype=np.int16), audio.time_of(start)

    def _contiguous(self, audio, start, end):
        expect_us = (end - start) // 2 * 1_000_000 // self.rate
        return abs(audio.time_of(end) - audio.time_of(start) - expect_us) < 1000

    def _hold(self, call, start_us, min_talk_us, manual=False):
        """A recording of ``call`` held in memory until it has talked ``min_talk_us``
        (and, if ``manual``, until :meth:`release`)."""
        pipeline = HeldPipeline(
            self.profile, self.chunk_flush_ms, self.rate, first_chunk_ms=self._first_chunk_ms(start_us)
        )
        active = _Active(call, None, pipeline, None, start_us)
        active.min_talk_us = min_talk_us
        active.manual = manual
        if min_talk_us and not manual and call.answered_us is not None:
            active.release_timer = self.clock.call_at(
                call.answered_us + min_talk_us + HOLD_CONFIRM_US, lambda: self._release_held(active)
            )
        return active

    def _long_enough(self, active):
        """Whether a held recording may go to the card: released, connected, talked enough."""
        call = active.call
        if active.manual or call.answered_us is None:
            return False
        if call.ended_us is not None:
            end_us = call.ended_us
        elif call.quiet_us is not None:  # silent since: a silence clear would end it there
            end_us = max(call.quiet_us, call.answered_us)
        else:
            end_us = self.clock.now_us()
        return end_us - call.answered_us >= active.min_talk_us

    def _release_held(self, active, closing=False):
        """Write a held recording to the card if its call lasted long enough, else drop it.

        Called by the release timer, and with ``closing`` when the call is
        over. Returns the recording that carries on (now on the card), or None.
        """
        with self._lock:
            if self._active.get(active.call.line) is not active or not active.held:
                return None
            if not self._long_enough(active):
                if closing or (active.call.ended_us is not None and not active.parked):
                    return self._drop_unless_held(active, short=not active.manual, closing=closing)
                if active.call.ended_us is None and not active.manual:
                    active.release_timer = self.clock.call_later(
                        HOLD_RECHECK_US, lambda: self._release_held(active)
                    )
                return None
            return self._write_held(active, closing)

    def _write_held(self, active, closing=False):
        """Write a held recording to the card; it carries on there. Returns the recording
        that carries on, or None (it could not be written: dropped, with an alarm)."""
        with self._lock:
            if active.release_timer is not None:
                active.release_timer.cancel()
            try:
                opened = self._open(active.call, active.start_us, held=active.pipeline)
            except DiskFullError as exc:
                self._disk_full_alarm(active.call.line, True, _message(exc))
                return self._drop(active, short=False)
            except OSError as exc:
                log.error("cannot write held recording of call %s: %s", active.call.id, exc)
                self._alarm(active.call.line, RECORDING_FAILED, True, _message(exc), active.call)
                return self._drop(active, short=False)
            if active.timer is not None:
                active.timer.cancel()
            if self._active.get(active.call.line) is not opened:
                return None  # writing the held audio failed: stopped as partial
            opened.next_us, opened.end_us = active.next_us, active.end_us
            opened.speech = active.speech
            if active.end_us is not None and not closing:
                opened.timer = self.clock.call_later(self.END_GRACE_US, lambda: self._close(opened))
            return opened

    def _drop_unless_held(self, active, short=True, closing=False):
        """Forget a held recording, unless its call is on legal hold: a hold's recordings
        survive every deletion, so what was held is written to the card instead and
        carries on there (:meth:`_write_held`, whose result this returns; else None)."""
        call = active.call
        try:
            held = call.id is not None and self.store.on_hold(call.id)
        except sqlite3.Error as exc:
            # What is dropped cannot come back: kept while the hold is unknown.
            log.error(
                "cannot read whether call %s is on legal hold (its recording is kept): %s", call.id, exc
            )
            held = True
        if not held:
            return self._drop(active, short)
        log.warning("call %s is on legal hold: what was held of it is written, not dropped", call.id)
        return self._write_held(active, closing)

    def _drop(self, active, short=True):
        """Forget a held recording: none of it was ever written."""
        del self._active[active.call.line]
        for timer in (active.timer, active.release_timer):
            if timer is not None:
                timer.cancel()
        active.pipeline.abort()
        self.stats["dropped_short"] += short
        return None

    def _open(self, call, start_us, held=None):
        """Start recording ``call`` from clock time ``start_us``.

        ``held``: a :class:`HeldPipeline` whose audio goes first (and whose
        encoder carries on).

        :raises DiskFullError: less than the reserve is free, or no room at all
        :raises OSError: the file cannot be created, or the call has no id to bind
            the recording to (no call log gave it one)
        """
        if call.id is None:
            raise OSError(errno.EIO, "the call on line %d has no call-log id to bind it to" % call.line)
        free = self._free(self.store.dir)
        need = self.disk_reserve_bytes + (START_HEADROOM_BYTES if self.disk_reserve_bytes else 0)
        if free < need:
            raise DiskFullError(
                errno.ENOSPC,
                "the disk is full (%s free, %s kept free for "
                "the call log): call %s is not recorded. Free space to record "
                "again" % (_size(free), _size(self.disk_reserve_bytes), call.id),
            )
        recording_id = uuid.uuid4().hex
        data_key, wrapped = new_wrapped_key(self._recipient(call.line), recording_id, call)
        if self.on_data_key is not None:
            try:
                self.on_data_key(recording_id, data_key)
            except (OSError, sqlite3.Error) as exc:  # the recording matters more
                log.error("archive key escrow of recording %s failed: %s", recording_id, exc)
        wall_us = self.clock.wall_at(start_us)
        self._begin_row(call, recording_id, (call.id, wrapped, self.profile, self.chunk_ms, wall_us))
        header = sealed_header(
            call, recording_id, wall_us, wrapped, self.clock, self.field_cipher, self.country()
        )
        try:
            try:
                self.store.write_key_copy(recording_id, wrapped, new=True)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                raise DiskFullError(
                    errno.ENOSPC, "the disk is full: call %s is not recorded (%s)" % (call.id, exc)
                ) from exc
            pipeline = RecordingPipeline(
                self.store.path_of(recording_id),
                recording_id,
                data_key,
                header,
                profile=self.profile,
                flush_ms=self.chunk_flush_ms,
                rate=self.rate,
                fsync=self.fsync,
                journal=self.journal,
                first_chunk_ms=self._first_chunk_ms(start_us),
                # With a journal the file is created and sealed without syncs of its own (the
                # journal holds it until ext4 commits it), unless its row is not written yet:
                # replay creates a lost file again only for a recording the call log holds.
                sync_create=not self.holdup and (self.journal is None or recording_id in self._unbegun),
                # Under a hold-up capacitor the intent row is not synced on its own: the
                # file waits for its first chunk, and the call log is synced just before.
                before_create=self.store.before_file if self.holdup else None,
                sync_group=self.sync_group,
            )
        except BaseException:
            self._clean_up(call, recording_id)
            raise
        reserve = None
        if self.disk_reserve_bytes:
            reserve = DiskReserve(pipeline.writer, self.store.dir, self.disk_reserve_bytes, free=self._free)
            pipeline.encoder.output = reserve
        self._disk_full_alarm(call.line, False, "recording again")
        active = _Active(call, recording_id, pipeline, reserve, start_us)
        active.dialled = _dialled(call, self.country())
        if held is not None:
            self._active[call.line] = active
            try:
                held.release_into(pipeline)
            except OSError as exc:
                self._stop(active, exc)
        return active

    def _clean_up(self, call, recording_id):
        """Destroy what a recording that failed to start left (its row, key copy, file), as a
        discarded one is: decided here (:meth:`RecordingStore.unname_file`), done by the
        worker (:meth:`_shred`), so that the card's syncs do not hold up every line's capture.

        The card failing again (the call log's error is no OSError) is logged: the first
        failure is the one the caller raises, which becomes an alarm. What is left then, or
        on legal hold, is a row still naming its file, which the next start makes an empty
        partial recording."""
        row = not self._forget_row(recording_id)  # else no row (the card refused it)
        if row:
            try:
                if not self.store.unname_file(recording_id, call.id):
                    return
            except sqlite3.Error:
                log.exception("could not clean up recording %s that failed to start", recording_id)
                return
        self._to_shredder(recording_id, NOT_A_RECORDING, call, row=row)

    def _to_shredder(self, recording_id, why, call, row=True):
        """Hand the destruction of ``recording_id`` (its destruction decided) to the worker.

        ``row``: its row on the card says the destruction was decided
        (:meth:`RecordingStore.unname_file`), so that the next start does it if this run
        does not (:meth:`RecordingStore.recover`); :meth:`close` at the power-fail
        warning may leave it to that start. False for a file no row names (its alarm, if
        the card refuses the destruction, says so: :meth:`_shred`)."""
        if self._shredder is None:
            self._shredder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linekeeper-shred")
        self._shreds = [(f, r) for f, r in self._shreds if not f.done()]
        future = self._shredder.submit(self._shred, recording_id, why, call, row)
        self._shreds.append((future, row))

    def _begin_row(self, call, recording_id, row):
        """Commit the recording's intent row (``row``: :meth:`RecordingStore.begin`'s arguments).

        A database that refuses it for want of space stops the recording
        before its file exists. Any other refusal (an I/O error, a lock) does
        not: the audio goes to the card all the same, its sealed header naming
        the call (what ``linekeeper repair`` rebuilds rows from), the row
        waits in memory and is written before the recording is finished, and
        the ``call_log`` alarm of the call's line is on meanwhile.

        :raises DiskFullError: the database is full
        """
        try:
            self.store.begin(*row, recording_id=recording_id)
        except sqlite3.Error as exc:
            if _sqlite_full(exc):
                raise DiskFullError(
                    errno.ENOSPC, "the disk is full: the call log cannot take a new recording (%s)" % exc
                ) from exc
            log.error("the call log refused recording %s of call %s: %s", recording_id, call.id, exc)
            self._unbegun[recording_id] = (call.line, row)
            if self._row_retry is None:
                self._row_retry = self.clock.call_later(ROW_RETRY_US, self._retry_rows)
            self._alarm(
                call.line,
                CALL_LOG_ALARM,
                True,
                "the call log refused the recording of call %s (%s): it is recorded, and "
                "its row is kept in memory until the call log takes it" % (call.id, _message(exc)),
            )

    def _write_begun(self, recording_id):
        """Write the intent row the database refused earlier, if any.

        :raises sqlite3.Error: refused again (it stays in memory)
        """
        if recording_id not in self._unbegun:
            return
        line, row = self._unbegun[recording_id]
        self.store.begin(*row, recording_id=recording_id)
        del self._unbegun[recording_id]
        self._rows_waited(line, "the call log took the recordings' rows again")

    def _forget_row(self, recording_id):
        """Forget the row the call log refused for ``recording_id``, whose recording is
        destroyed (True), if it had one waiting: with none left on its line, the line's
        ``call_log`` alarm (which says the row is kept in memory) goes off."""
        waiting = self._unbegun.pop(recording_id, None)
        if waiting is None:
            return False
        self._rows_waited(waiting[0], "no recording's row waits for the call log any more")
        return True

    def _rows_waited(self, line, message):
        """The ``call_log`` alarm of ``line`` off, unless another row of its waits."""
        if not any(waiting == line for waiting, _ in self._unbegun.values()):
            self._alarm(line, CALL_LOG_ALARM, False, message)

    def _retry_rows(self):
        """Write the refused intent rows (from a timer): the sooner a row is in, the
        less a crash meanwhile leaves for ``linekeeper repair``."""
        with self._lock:
            self._row_retry = None
            for recording_id in list(self._unbegun):
                try:
                    self._write_begun(recording_id)
                except sqlite3.Error as exc:
                    log.warning("the call log still refuses recording %s: %s", recording_id, exc)
                    break
            if self._unbegun:
                self._row_retry = self.clock.call_later(ROW_RETRY_US, self._retry_rows)

    def _ended(self, ev):
        with self._lock:
            active = self._active.get(ev.line)
            if active is None or active.call is not ev.call:
                return
            if ev.call.end_reason == "remote_silence":
                active.parked = True  # it may go on: see the module docstring
                return
            self._end_at(active, ev.call.ended_us)

    def _resumed(self, ev):
        """The silence-cleared call goes on: so does its recording, which never stopped."""
        with self._lock:
            active = self._active.get(ev.line)
            if active is None or active.call is not ev.call or not active.parked:
                return
            active.parked = False
            if active.held and not active.manual:
                self._release_held(active)  # long enough now, whatever it was before the quiet

    def _line_state(self, ev):
        """A parked recording ends when its line leaves the cleared state (on-hook, fault)."""
        if ev.state in (CLEARED, CONNECTED):
            return
        with self._lock:
            active = self._active.get(ev.line)
            if active is not None and active.parked:
                active.parked = False
                self._end_at(active, ev.t_us)

    def _end_at(self, active, end_us):
        """Close ``active`` once the rings have delivered its audio up to ``end_us``."""
        with self._lock:
            active.end_us = end_us
            # Audio up to the end may still be on its way from the rings.
            active.timer = self.clock.call_later(self.END_GRACE_US, lambda: self._close(active))
            if active.next_us >= active.end_us:
                self._close(active)

    def _close(self, active):
        """The call is over: finish the file and its row."""
        with self._lock:
            if self._active.get(active.call.line) is not active:
                return
            # What the delay line still holds of the call goes in first.
            self._flush_delay(active.call.line)
            if self._active.get(active.call.line) is not active:
                return
            if active.held:
                active = self._release_held(active, closing=True)
                if active is None:
                    return
            unkept = None
            if active.call.answered_us is None and active.call.ended_us is not None:
                # Off-hook, never connected: dial tone is not a call.
                unkept = (NOT_A_RECORDING, None)
            elif self.unkept is not None:
                # The policy keeps nothing of it, its call just ended (during its notice):
                # closed here before the policy heard of the end, the recording would be
                # finished and kept.
                unkept = self.unkept(active.call)
            # Unless the call is on legal hold: then it is finished as any. (A card that
            # refuses the decision does not keep it: _unkeep.)
            if unkept is not None and self._unkeep(active, *unkept):
                return
            try:
                info = active.pipeline.close()
            except OSError as exc:
                self._stop(active, exc)
                return
            self._release(active, info["state"], info)

    def _stop(self, active, exc=None):
        """End a recording before its call ends (disk full, a write failed): ``partial``."""
        if exc is None or isinstance(exc, DiskFullError) or exc.errno == errno.ENOSPC:
            self._disk_full_alarm(
                active.call.line,
                True,
                _message(exc)
                if exc
                else "the disk is full (down to the %s kept free for the call "
                "log): recording of call %s stopped; it keeps what was "
                "recorded. Free space to record again" % (_size(self.disk_reserve_bytes), active.call.id),
            )
        else:
            log.error("recording %s failed: %s", active.recording_id, exc)
            self._alarm(active.call.line, RECORDING_FAILED, True, _message(exc), active.call)
        active.pipeline.abort()
        self._release(active, "partial", active.pipeline.info())

    def _release(self, active, state, info):
        del self._active[active.call.line]
        if active.timer is not None:
            active.timer.cancel()
        self.stats["recordings"] += 1
        self.stats["partial"] += state == "partial"
        self.stats["bytes_written"] += info["bytes_written"]
        self.stats["bytes_stored"] += info["bytes"]
        self._write_call_copy(active)
        # The speech spans in the same commit as the recording's end (one write to the card).
        self._finish(active.recording_id, state, info["duration_s"], active.speech.spans())
        self.bus.publish(
            RecordingFinished(
                line=active.call.line,
                t_us=self.clock.now_us(),
                recording_id=active.recording_id,
                call_id=active.call.id,
                state=state,
                duration_s=info["duration_s"],
                size_bytes=info["bytes"],
            )
        )

    def _write_call_copy(self, active):
        """Give the recording a call copy when its call's number, as the call log keeps it,
        is not its header's: digits learnt after recording began (a key begun before the
        answer and reported after it; a recording from off-hook, before any digit). Without
        it ``linekeeper repair`` could only rebuild the header's (docs/FORMAT.md)."""
        call = active.call
        now = _dialled(call, self.country())
        if active.dialled is None or now == active.dialled:
            return
        number = now[0] if self.field_cipher is None else self.field_cipher.seal(now[0], "number")
        try:
            self.store.write_call_copy(
                active.recording_id, call.id, {"number": number, "digits_withheld": now[1]}
            )
        except OSError as exc:  # the call log has the number: only a repair would miss it
            log.error("the call copy of recording %s could not be written: %s", active.recording_id, exc)

    def _finish(self, recording_id, state, duration_s, speech=None):
        try:
            self._write_begun(recording_id)
            self.store.finish(recording_id, state, duration_s, speech=speech)
        except sqlite3.Error as exc:
            # The file is safe on the card; its row says "recording" until this
            # succeeds (next call, box stop) or the start-up recovery sweep runs.
            log.error("cannot finish recording %s in the call log: %s", recording_id, exc)
            self._unfinished.append((recording_id, state, duration_s, speech))

    def _retry_unfinished(self):
        pending, self._unfinished = self._unfinished, []
        for item in pending:
            self._finish(*item)

    def close(self, cancel_destructions=False):
        """Finish every recording in progress (the box is stopping); returns how many
        destructions were left to the next start (0 unless ``cancel_destructions``).

        The stop waits here for every destruction handed to the worker (:meth:`_destroy`).
        At the power-fail warning (``cancel_destructions``) it does not: the worker's card
        syncs, a few for each recording destroyed, would come before the call log's
        writes and sync, which must be on the card within the hold-up time. Then the
        destructions the worker has not begun and whose row says they were decided
        (:meth:`RecordingStore.unname_file`, committed and synced before the recording
        stopped) are cancelled: the next start does each, before anything else, and
        audits it with the reason its row keeps (:meth:`RecordingStore.recover`), and
        its file is never written into again meanwhile (the journal's replay skips it).
        The one the worker is doing, and any of a file that no row names, go on; the
        box waits for them once its seal is on the card (:meth:`finish_destructions`).
        So nothing the seal writes waits behind them, and nothing whose destruction was
        decided is kept past the next start.
        """
        with self._lock:
            for line in self._delays:
                if line not in self._active:
                    self._delays[line].chunks.clear()
            for active in list(self._active.values()):
                self._close(active)
            if self.journal is not None:
                self._commit()
            if self.sync_group is not None:
                self._sync_pass(force=True)  # nothing should wait: every file was closed above
            self._retry_unfinished()
            if self._row_retry is not None:
                self._row_retry.cancel()
                self._row_retry = None
            if self._undecided:
                self._retry_destructions()
                if self._undecided_retry is not None:
                    self._undecided_retry.cancel()
                    self._undecided_retry = None
                if self._undecided:
                    log.error(
                        "%d recording(s) whose destruction the card refused are still on the card at "
                        "the stop: the next start destroys those whose decision it noted beside the "
                        "call log (the recording_failed alarm names their calls)",
                        len(self._undecided),
                    )
            if self._unbegun:
                log.error(
                    "%d recording(s) are on the card but not in the call log at the stop: "
                    "`linekeeper repair` rebuilds their rows from their sealed headers",
                    len(self._unbegun),
                )
            shredder, self._shredder = self._shredder, None
            shreds, self._shreds = self._shreds, []
            left = 0
            if cancel_destructions:
                left = sum(1 for future, resumable in shreds if resumable and future.cancel())
        if shredder is None:
            return 0
        if cancel_destructions:
            shredder.shutdown(wait=False)
            self._stopping_shredder = shredder
            if left:
                log.warning("%d destruction(s) of recordings left for the next start to finish", left)
            return left
        shredder.shutdown(wait=True)  # every destruction decided is done before the stop
        return 0

    def finish_destructions(self):
        """Wait for the destructions :meth:`close` left running (``cancel_destructions``)."""
        shredder, self._stopping_shredder = self._stopping_shredder, None
        if shredder is not None:
            shredder.shutdown(wait=True)

    # ------------------------------------------------------------ audio
    def _consumer(self, line):
        def consume(samples, t_us):
            with self._lock:
                if not self.delay_us:
                    return self._deliver(line, samples, t_us)
                delay = self._delays[line]
                delay.chunks.append((t_us, samples))
                newest_us = t_us + len(samples) * 1_000_000 // self.rate
                while delay.chunks and self._end_of(delay.chunks[0]) <= newest_us - self.delay_us:
                    chunk_us, chunk = delay.chunks.popleft()
                    self._deliver(line, chunk, chunk_us)

        return consume

    def _end_of(self, chunk):
        return chunk[0] + len(chunk[1]) * 1_000_000 // self.rate

    def _flush_delay(self, line):
        """Let everything the line's delay line holds through (a call ends, the box stops)."""
        delay = self._delays[line]
        while delay.chunks:
            chunk_us, chunk = delay.chunks.popleft()
            self._deliver(line, chunk, chunk_us)

    def _deliver(self, line, samples, t_us):
        """Audio out of the delay line: silenced where asked, to the line's recording."""
        samples = self._blanked(line, samples, t_us)
        active = self._active.get(line)
        if active is not None:
            self._feed(active, samples, t_us)

    def blank(self, line, from_us, to_us=None):
        """Silence ``line``'s audio from clock time ``from_us`` to ``to_us`` in recordings.

        Only audio not yet encoded can be silenced: up to ``delay_ms`` old,
        and everything still to come (also a later recording's pre-roll).
        ``to_us`` None: until :meth:`unblank`. Returns whether all of the
        span was still in time (``from_us`` not older than the delay line).
        """
        with self._lock:
            delay = self._delays[line]
            delay.blanks.append([from_us, to_us])
            # Spans long over, and out of the ring, need not be kept. Out of the ring, not
            # two minutes: an on-demand recording reaches back lookback_s (up to 600 s),
            # and with the span of a card number keyed 140 s before the request dropped,
            # the digits went into the recording.
            reach_s = getattr(self.capture, "ring_seconds", 0) + 10
            horizon_us = from_us - max(120, reach_s) * 1_000_000
            delay.blanks = [b for b in delay.blanks if b[1] is None or b[1] > horizon_us]
            head_us = delay.head_us()
            return head_us is None or head_us <= from_us

    def unblank(self, line, t_us):
        """End the open spans of :meth:`blank` on ``line`` at clock time ``t_us``.

        Called from the capture callback, so it takes no lock (the encoder may
        hold it, writing to the card): setting a span's end is one store.
        """
        for span in list(self._delays[line].blanks):
            if span[1] is None:
                span[1] = max(span[0], t_us)

    def _blanked(self, line, samples, t_us):
        blanks = self._delays[line].blanks
        if not blanks or not len(samples):
            return samples
        end_us = t_us + len(samples) * 1_000_000 // self.rate
        out = samples
        for from_us, to_us in blanks:
            if from_us >= end_us or (to_us is not None and to_us <= t_us):
                continue
            lo = max(0, (from_us - t_us) * self.rate // 1_000_000)
            hi = (
                len(samples)
                if to_us is None
                else min(len(samples), -(-(to_us - t_us) * self.rate // 1_000_000))
            )
            if lo < hi:
                if out is samples:
                    out = np.array(samples)  # the capture's buffer is read-only
                out[lo:hi] = 0
        return out

    def _feed(self, active, samples, t_us):
        sample_us = 1_000_000 / self.rate
        # A hole in capture (an overrun) becomes silence, so the recording keeps its length.
        if active.next_us + sample_us <= t_us <= active.next_us + MAX_GAP_FILL_US:
            end = t_us if active.end_us is None else min(t_us, active.end_us)
            while active.next_us + sample_us <= end and self._active.get(active.call.line) is active:
                n = min(int((end - active.next_us) // sample_us), self.rate)
                self._feed(active, np.zeros(n, np.int16), active.next_us)
        # Drop what the pipeline already has (pre-roll and reader overlap)...
        if t_us < active.next_us:
            skip = (active.next_us - t_us) * self.rate // 1_000_000
            samples, t_us = samples[skip:], active.next_us
        # ... and what comes after the call's end.
        end_us = t_us + len(samples) * 1_000_000 // self.rate
        if active.end_us is not None and end_us > active.end_us:
            samples = samples[: max(0, (active.end_us - t_us) * self.rate // 1_000_000)]
        if self._active.get(active.call.line) is not active:
            return
        if len(samples):
            try:
                active.pipeline.feed(samples, t_us)
            except OSError as exc:
                self._stop(active, exc)
                return
            active.speech.feed(samples)
            active.next_us = t_us + len(samples) * 1_000_000 // self.rate
            if active.reserve is not None and active.reserve.tripped:
                self._stop(active)
                return
        if active.end_us is not None and active.next_us >= active.end_us:
            self._close(active)

    def _disk_full_alarm(self, line, active, message):
        """Raise or clear the ``disk_full`` alarm: published when it changes, logged always.

        The card is the box's, not a line's: the alarm is the box's (line 0), raised by
        whichever line found the card full and cleared by whichever records again (as a
        line's, one raised on line 1 and cleared by line 2 stayed on for good)."""
        if active == self._disk_full:
            if active:
                log.warning("disk still full on line %d: %s", line, message)
            return
        self._disk_full = active
        if active:
            # Read by an owner on the dashboard and in the mail: what is happening and what to
            # do first, the recorder's own words (sizes, the call) after for whoever mends it.
            message = "%s In detail: %s (found by line %d)" % (DISK_FULL_PLAIN, message, line)
        self._alarm(0, "disk_full", active, message)

    def _alarm(self, line, kind, active, message, call=None):
        """Publish the alarm (about ``call``, when it is about one)."""
        log.warning("alarm %s on line %d: %s", kind, line, message)
        about = {}
        if call is not None:
            about = {"call_id": call.id, "call_us": self.clock.wall_at(call.started_us)}
        alarm = Alarm(line=line, t_us=self.clock.now_us(), kind=kind, active=active, message=message, **about)
        if kind != RECORDING_FAILED or not active:
            self.bus.publish(alarm)
            return
        with self._failed_lock:
            # Whatever raised it, it is no deferred destruction's (_defer_destruction says so
            # of its own after this): the end of those does not take it off (_destruction_done).
            self._failed_by_deferral[line] = False
            self.bus.publish(alarm)


def _skipping(call, skip):
    """What :meth:`RecordingStore.unname_file` calls once the destruction of ``call``'s
    recording is decided, the policy not recording it for ``skip`` (None: nothing)."""
    if skip is None:
        return None

    def decided():
        call.policy_decision, call.policy_reason = "skip", skip

    return decided


def _dialled(call, country):
    """``(number, digits_withheld)`` of ``call`` as the call log keeps them (clear)."""
    return stored_number(call, country), bool(getattr(call, "digits_withheld", False))


def sealed_header(call, recording_id, wall_us, wrapped, clock, cipher=None, country="uk"):
    """The header a recording file carries: enough to rebuild its call-log rows.

    ``linekeeper repair`` rebuilds a lost call log from these (see
    docs/recovery.md): the call as known when recording began, and where the
    copy of its wrapped data key is (``ID.lkkey``; recordings made before
    issue 19's `rekey` carry the wrapped key here). ``wrapped`` is unused
    (kept for callers). Times are wall µs. ``cipher``: the box's field
    cipher; the number and name are then sealed text, as in the call log
    (:mod:`firmware.storage.fieldseal`), so ``repair`` copies them as they are.
    ``country``: the box's, whose plan the number is judged in as the call log judges
    it (:func:`firmware.calls.supervisor.stored_number`: a prefix such as ``141`` is not
    part of it).
    """

    def wall(t_us):
        return None if t_us is None else clock.wall_at(t_us)

    def personal(value, field):
        return value if cipher is None else cipher.seal(value, field)

    header = {
        "recording_id": recording_id,
        "call_id": call.id,
        "line": call.line,
        "created_us": wall_us,
        "direction": call.direction,
        "call_started_us": wall(call.started_us),
        "answered_us": wall(call.answered_us),
        # PCI DSS: a card number keyed into the dialled number is never stored.
        "number": personal(stored_number(call, country), "number"),
        "name": personal(cards.scrub(getattr(call, "name", None)), "name"),
        "clock_synced": bool(getattr(clock, "synchronised", False)),
        # The wrapped data key is kept outside this (authenticated, unchangeable)
        # header, in ID.lkkey beside the file, so that `rekey` can replace it.
        "key_copy": KEY_COPY_SUFFIX.lstrip("."),
        "key_context": KEY_CONTEXT,
    }
    # Why there is no number ("private": withheld, "unavailable"; null: none was missing
    # or none came): not personal data. Always present since it was added, so that
    # ``repair`` tells a header that says so from an older one that could not
    # (docs/FORMAT.md); without it a rebuilt call could only say "unknown".
    header["absence"] = getattr(call, "absence", None)
    if getattr(call, "digits_withheld", False):
        # Digits keyed after a card number were withheld before recording began: a call
        # rebuilt from this header says so, as the lost log did (docs/recovery.md).
        header["digits_withheld"] = True
    return header


class _DelayLine:
    """One line's audio waiting to be encoded, and the spans to silence in it."""

    def __init__(self):
        self.chunks = collections.deque()  # (t_us, samples), oldest first
        self.blanks = []  # [from_us, to_us or None]

    def head_us(self):
        """Clock time of the oldest audio still waiting (None: nothing waits)."""
        return self.chunks[0][0] if self.chunks else None


def _sqlite_full(exc):
    """True when SQLite refused for want of room: SQLITE_FULL, or no room to grow the
    database's -shm file as its WAL grows (an I/O error by its primary code, "disk I/O
    error" by its words, on a card that is sound)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (SQLITE_FULL, SQLITE_IOERR_SHMSIZE) or "full" in str(exc)


def _size(n):
    return "%.1f MiB" % (n / (1 << 20)) if n >= 1 << 20 else "%d KiB" % (n // 1024)


def _message(exc):
    """An OSError's own words, without the "[Errno 28]" and file name decoration."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
