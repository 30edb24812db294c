"""The line check: what each line's hub, ATA or exchange was seen to do.

:class:`LineCheck` listens to the calls the supervisor ends and keeps, per
line, the behaviour they showed: the caller-ID variants (standard, before or
after the first ring, announced by a reversal and/or a dual-tone alert), how
the far end's clear was signalled (``end_reason``) and how long its
loop-current breaks were, the ring cadence, a reversal on answer, hook
flashes. It is kept in ``DATA_DIR/linecheck.json`` (written atomically), so
``linekeeper linecheck`` can report it with or without the box running, and
compared with the shipped adapter profiles (:mod:`board.adapter`) to say which
ones the line behaves like. A call ended by the silence clear is learned once
its line leaves the cleared state, since sound may yet re-open it. The file also
keeps the ring timeout the box ran with (``ring_timeout_ms``), so the advice about
a US-style cadence is given only while the box would still split its ringing.

The file is not rewritten after every call (each rewrite is a page of the card,
docs/audit-writes.md): it is written when what a line showed changes in kind (a
new caller-ID variant or clear signal, another ring cadence, another range of
loop breaks, the summary), else at most every :data:`SAVE_EVERY_US` of clock
time, and at :meth:`LineCheck.close` (the box's clean stop). A crash loses only
the counts of the calls since the last write: advice about the line's adapter,
which the next calls learn again, never a call or a recording.
"""

import json
import logging
import os
import threading

from board.adapter import list_adapters, load_adapter
from firmware.calls.call import REMOTE_REASONS
from firmware.calls.supervisor import CLEARED, CONNECTED
from firmware.storage.fsutil import atomic_write
from telephony import countries

from .bus import CallEnded, CallResumed, LineStateChanged
from .errors import LinekeeperError

log = logging.getLogger(__name__)

FILE = "linecheck.json"
FORMAT = 1
CADENCE_TOLERANCE = 0.2  # ring cadences: ±20 % (and the ring detector's ±60 ms)
CADENCE_SLACK_MS = 60
BREAK_TOLERANCE = 0.25  # loop-break durations: ±25 % (and ±30 ms)
BREAK_SLACK_MS = 30
LONG_BURST_MS = 1500  # a first burst this long: 2 s on / 4 s off (US) ringing
LONG_CADENCE_TIMEOUT_MS = countries.country("us").ring_timeout_ms  # outlasts its 4 s pause
SAVE_EVERY_US = 600_000_000  # counts alone are written at most every ten minutes


def path_in(data_dir):
    return os.path.join(data_dir, FILE)


def _empty():
    return {
        "calls": 0,
        "caller_id": {},
        "clears": {},
        "loop_break_ms": [],
        "ring_ms": None,
        "answer_reversal": 0,
        "hook_flashes": 0,
    }


class LineCheck:
    """Per-line observations, learned from ended calls (see the module docstring).

    :param data_dir: where ``linecheck.json`` is kept
    :param lines: number of lines
    :param ring_timeout_ms: the ring timeout the box runs with (kept with the observations)
    """

    def __init__(self, data_dir, lines, adapters=(), on_change=None, ring_timeout_ms=None):
        self._path = path_in(data_dir)
        self._ring_timeout_ms = ring_timeout_ms
        self._adapters = tuple(adapters)
        self.on_change = on_change  # f(line, summary): e.g. the status page's
        self._lock = threading.Lock()
        self._lines = {line: _empty() for line in range(1, lines + 1)}
        self._dirty = False  # learned since the last write
        self._saved_us = None  # clock time of the last write (None: not yet this run)
        self._silenced = {}  # line -> a silence-cleared call not learned yet
        try:
            saved, saved_timeout = _read_doc(data_dir)
            # Another timeout than the file's: said with the next write (a call, the stop).
            self._dirty = bool(saved) and ring_timeout_ms not in (None, saved_timeout)
        except LinekeeperError as exc:
            log.warning("starting the line check afresh: %s", exc)
            saved = {}
        for line, obs in saved.items():
            if line in self._lines:
                self._lines[line].update(obs)

    def attach(self, bus):
        bus.subscribe(CallEnded, self._ended)
        bus.subscribe(CallResumed, self._resumed)
        bus.subscribe(LineStateChanged, self._line_state)

    def _ended(self, ev):
        if ev.call.end_reason == "remote_silence":
            # The call may go on (sound again before on-hook): learned once the line says.
            with self._lock:
                self._silenced[ev.line] = ev.call
            return
        self._learn(ev.call, ev.t_us)

    def _resumed(self, ev):
        with self._lock:
            self._silenced.pop(ev.line, None)

    def _line_state(self, ev):
        if ev.state in (CLEARED, CONNECTED):
            return
        with self._lock:
            call = self._silenced.pop(ev.line, None)
        if call is not None:
            self._learn(call, ev.t_us)

    def _learn(self, call, t_us):
        with self._lock:
            obs = self._lines.get(call.line)
            if obs is None:
                return
            before = _kind(obs, self._adapters)
            learn(obs, call)
            learned = summary(obs, self._adapters)
            self._dirty = True
            if self._saved_us is None:
                self._saved_us = t_us  # the counts' cadence starts with this run's first call
            due = _kind(obs, self._adapters) != before or t_us - self._saved_us >= SAVE_EVERY_US
            if due:
                self._saved_us = t_us
        if due:
            self.save()
        if self.on_change is not None:
            self.on_change(call.line, learned)

    def save(self, sync=True):
        """Write what was learned since the last write (nothing if nothing was); a card
        that refuses is logged, never raised: the check is advice and must never stop a
        call ending or the box stopping. ``sync=False``: on the card with the file
        system's next commit, not one of its own (:func:`atomic_write`, ``sync_dir``)."""
        with self._lock:
            if not self._dirty:
                return
            doc = {"format": FORMAT, "lines": {str(k): v for k, v in self._lines.items()}}
            if self._ring_timeout_ms is not None:
                doc["ring_timeout_ms"] = self._ring_timeout_ms
            text = json.dumps(
                doc,
                indent=1,
                sort_keys=True,
            )
            self._dirty = False
        try:
            atomic_write(self._path, text.encode("utf-8"), sync_dir=sync)
        except OSError as exc:
            with self._lock:
                self._dirty = True
            log.warning("could not save the line check: %s", exc)

    def close(self):
        """The box stops: write what waits, durable with the stop's next commit (its
        clean-stop mark's, or a database's) rather than with two of its own."""
        self.save(sync=False)

    def summaries(self):
        """``{line: summary}`` for every line (see :func:`summary`)."""
        with self._lock:
            return {line: summary(obs, self._adapters) for line, obs in self._lines.items()}

    def snapshot(self):
        """``{line: observations}``, a copy (see :func:`learn` for the fields)."""
        with self._lock:
            return json.loads(json.dumps(self._lines))


def _kind(obs, adapters):
    """What a line showed, without the counts: a change here is written at once."""
    breaks = obs["loop_break_ms"]
    return (
        sorted(obs["caller_id"]),
        sorted(obs["clears"]),
        obs["ring_ms"],
        (min(breaks), max(breaks)) if breaks else None,
        bool(obs["answer_reversal"]),
        bool(obs["hook_flashes"]),
        summary(obs, adapters),
    )


def learn(obs, call):
    """Add what ``call`` (a finished :class:`~firmware.calls.call.Call`) showed to ``obs``."""
    obs["calls"] += 1
    for note in call.notes:
        if note.startswith("cid:"):
            key = note[4:]
            obs["caller_id"][key] = obs["caller_id"].get(key, 0) + 1
        elif note.startswith("loop_break:"):
            obs["loop_break_ms"] = (obs["loop_break_ms"] + [int(note.split(":")[1])])[-20:]
        elif note == "answer_reversal":
            obs["answer_reversal"] += 1
        elif note.startswith("hook_flash:"):
            obs["hook_flashes"] += 1
    if call.end_reason in REMOTE_REASONS:
        obs["clears"][call.end_reason] = obs["clears"].get(call.end_reason, 0) + 1
    if call.ring_cadence_ms:
        obs["ring_ms"] = list(call.ring_cadence_ms)


def _read_doc(data_dir):
    """``({line: obs}, ring_timeout_ms)`` from the file (see :func:`read`)."""
    path = path_in(data_dir)
    if not os.path.exists(path):
        return {}, None
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if doc.get("format") != FORMAT:
            raise ValueError("unknown format %r" % doc.get("format"))
        timeout = doc.get("ring_timeout_ms")  # None: written by an earlier release
        if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)):
            raise ValueError("ring_timeout_ms %r is not a number of ms" % (timeout,))
        return {int(k): v for k, v in doc["lines"].items()}, timeout
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LinekeeperError("the line check in %s is unreadable: %s" % (path, exc)) from None


def read(data_dir):
    """The saved observations, ``{line: obs}``; ``{}`` when there are none yet.

    :raises LinekeeperError: the file is unreadable or not a line check
    """
    return _read_doc(data_dir)[0]


# ------------------------------------------------------------ profiles
def variant_of(adapter):
    """An adapter profile's caller-ID variant, as the supervisor notes it (without "cid:")."""
    how = adapter.caller_id
    return ":".join(
        [how.standard, how.when] + sorted(k for k in ("dtas", "reversal", "ring_pulse") if getattr(how, k))
    )


def mismatches(obs, adapter):
    """Why the observations ``obs`` do not fit ``adapter`` (an empty list: they do)."""
    why = []
    # Every variant seen must be the profile's: an exchange line sends V.23 and DTMF caller
    # ID, and fitted both uk-dv-hub and silent-ata when one variant of its own was enough.
    if set(obs["caller_id"]) - {variant_of(adapter)}:
        why.append("caller ID")
    if obs["clears"] and adapter.end_reason not in obs["clears"]:
        why.append("clear signal")
    if obs["loop_break_ms"] and adapter.disconnect.signal == "loop_break":
        want = adapter.disconnect.duration_ms
        if any(abs(ms - want) > want * BREAK_TOLERANCE + BREAK_SLACK_MS for ms in obs["loop_break_ms"]):
            why.append("loop-break length")
    if obs["ring_ms"]:
        cadence = adapter.ring.cadence_ms
        for k, ms in enumerate(obs["ring_ms"]):
            want = cadence[k % len(cadence)]
            if abs(ms - want) > want * CADENCE_TOLERANCE + CADENCE_SLACK_MS:
                why.append("ring cadence")
                break
    if obs["answer_reversal"] and not adapter.answer_reversal:
        why.append("reversal on answer")
    return why


def matching_profiles(obs, adapters):
    """The ids of the ``adapters`` the observations fit; none when nothing was seen."""
    if not obs["calls"]:
        return []
    return [a.id for a in adapters if not mismatches(obs, a)]


def not_seen_yet(obs):
    """What the line has not shown yet that tells the profiles apart ("no far-end clear"),
    or None: without a caller ID and a far-end clear an exchange line fits uk-dv-hub (same
    caller ID, its clear unseen) or, making calls only, every profile."""
    needed = (("caller_id", "caller ID"), ("clears", "far-end clear"))
    missing = [what for key, what in needed if not obs[key]]
    return "no %s" % " nor ".join(missing) if missing else None


def fits_text(profiles, missing):
    """The profiles a line fits, in words: "like uk-dv-hub", "like no adapter profile", or
    "not enough seen yet (no far-end clear; fits uk-dv-hub so far)" while ``missing``."""
    if not profiles:
        return "like no adapter profile"
    if missing:
        return "not enough seen yet (%s; fits %s so far)" % (missing, ", ".join(profiles))
    return "like %s" % ", ".join(profiles)


def summary(obs, adapters):
    """In short: the line's usual caller-ID variant and clear signal, and the profiles it fits."""

    def usual(counts):
        return max(sorted(counts), key=counts.get) if counts else None

    out = {
        "caller_id": usual(obs["caller_id"]),
        "clear": usual(obs["clears"]),
        "profiles": matching_profiles(obs, adapters),
        "missing": not_seen_yet(obs),
    }
    out["text"] = label(out)
    return out


CLEAR_LABELS = {
    "remote_break": "loop break",
    "remote_reversal": "reversal",
    "remote_tone": "tone",
    "remote_silence": "silence only",
}


def label(learned):
    """One line for the status page, e.g. "caller ID v23 before ring (dtas, reversal);
    clear: loop break; like uk-dv-hub" (:func:`fits_text` says the profiles)."""
    parts = []
    if learned["caller_id"]:
        std, when, *how = learned["caller_id"].split(":")
        parts.append(
            "caller ID %s %s%s" % (std, when.replace("_", " "), " (%s)" % ", ".join(how) if how else "")
        )
    if learned["clear"]:
        parts.append("clear: %s" % CLEAR_LABELS.get(learned["clear"], learned["clear"]))
    if parts or learned["profiles"]:
        parts.append(fits_text(learned["profiles"], learned.get("missing")))
    return "; ".join(parts)


def describe(line, obs, adapters, ring_timeout_ms=None):
    """Human-readable lines reporting one line's observations; ``ring_timeout_ms``: the
    box's (None: not known), which the note about long ring bursts is judged by."""
    out = ["line %d: %d call%s seen" % (line, obs["calls"], "" if obs["calls"] == 1 else "s")]
    if not obs["calls"]:
        return out
    cid = ", ".join("%s (%d)" % (k, n) for k, n in sorted(obs["caller_id"].items()))
    out.append("  caller ID:     %s" % (cid or "none seen"))
    clears = ", ".join("%s (%d)" % (k, n) for k, n in sorted(obs["clears"].items()))
    out.append("  far-end clear: %s" % (clears or "none seen"))
    if set(obs["clears"]) == {"remote_silence"}:
        out.append(
            "  note: the far end's hang-up was seen only as silence (a guess, made silence_clear_s "
            "after the line went quiet): enable the ATA's loop current disconnect (CPC) or its "
            "disconnect tone"
        )
    if obs["loop_break_ms"]:
        out.append("  loop breaks:   %d-%d ms" % (min(obs["loop_break_ms"]), max(obs["loop_break_ms"])))
    if obs["ring_ms"]:
        out.append("  ring cadence:  %s ms" % "/".join(str(ms) for ms in obs["ring_ms"][:4]))
        too_short = ring_timeout_ms is None or ring_timeout_ms < LONG_CADENCE_TIMEOUT_MS
        if obs["ring_ms"][0] >= LONG_BURST_MS and too_short:
            ran_with = ""
            if ring_timeout_ms is not None:
                ran_with = "the box ran with ring_timeout_ms %d: " % ring_timeout_ms
            out.append(
                "  note: long ring bursts (US-style cadence): %sset ring_timeout_ms to %d or each "
                "ring counts as a missed call" % (ran_with, LONG_CADENCE_TIMEOUT_MS)
            )
    if obs["answer_reversal"]:
        out.append("  reverses polarity on answer (%d)" % obs["answer_reversal"])
    if obs["hook_flashes"]:
        out.append("  hook flashes:  %d" % obs["hook_flashes"])
    fits = matching_profiles(obs, adapters)
    if not fits:
        out.append("  behaves like:  no shipped profile")
    elif not_seen_yet(obs):
        out.append("  behaves like:  %s" % fits_text(fits, not_seen_yet(obs)))
    else:
        out.append("  behaves like:  %s" % ", ".join(fits))
    return out


def report(data_dir, as_json=False):
    """The ``linekeeper linecheck`` report for ``data_dir`` (text, or a JSON document)."""
    observed, timeout = _read_doc(data_dir)
    adapters = [load_adapter(name) for name in list_adapters()]
    if as_json:
        return json.dumps(
            {
                "ring_timeout_ms": timeout,
                "lines": [
                    dict(obs, line=line, profiles=matching_profiles(obs, adapters))
                    for line, obs in sorted(observed.items())
                ],
            },
            indent=1,
        )
    if not observed:
        return "no calls seen yet: the line check fills in as calls come and go"
    return "\n".join(
        text for line, obs in sorted(observed.items()) for text in describe(line, obs, adapters, timeout)
    )
