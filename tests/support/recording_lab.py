"""The recording lab: a box on the simulated board, crashes, and audio comparisons."""

import contextlib
import json
import os
import shutil
import wave
from dataclasses import dataclass, field

import numpy as np

from firmware.storage.keystore import Argon2Params, KeyStore

from support.cli import export_args, run_linekeeper

PASSWORD = "correct horse battery 7"


# In-process key slots use a cheap Argon2id: these tests are about recordings,
# not the KDF (tests/storage/test_keystore.py covers that). CLI `init` uses the real cost.
CHEAP_KDF = Argon2Params(memory_kib=8, iterations=1)


RATE = 8000


PERIOD_MS = 20  # the HAT's ALSA period; the recorder's latency bound depends on it


PERIOD_US = PERIOD_MS * 1000


LOSS_LIMIT_US = 1_000_000  # a crash loses at most the last second of a recording

SENTENCE = "The birch canoe slid on the smooth planks."


def inbound_calls(per_line, every_s, talk_s):
    """``per_line`` short inbound calls on each of lines 1 and 2, ``every_s`` apart, each
    talking ``talk_s`` with one sentence: the calls of a scenario_doc(..., lines=2)."""
    return [
        {
            "line": line,
            "at": 0.3 * line + every_s * k,
            "direction": "in",
            "rings": 1,
            "talk": talk_s,
            "speech": [{"at": 0.2, "text": SENTENCE}],
        }
        for k in range(per_line)
        for line in (1, 2)
    ]


TWO_LINES_TWICE = inbound_calls(2, every_s=10.0, talk_s=4.0)


@dataclass
class Run:
    """A finished run of the simulated box."""

    data_dir: str
    scenario: object
    timeline: object
    alarms: list = field(default_factory=list)
    recovered: list = field(default_factory=list)


class Lab:
    def __init__(self, tmp_path, synth, speech_cache):
        self.tmp_path = tmp_path
        self.synth = synth
        self.speech_cache = str(speech_cache)
        self._template = None
        self.recovery_key = None
        self._timelines = {}

    # -------------------------------------------------------------- scenarios
    @staticmethod
    def scenario_doc(calls, lines=4, **extra):
        return dict(
            {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": lines, "calls": calls}, **extra
        )

    @staticmethod
    def load(doc):
        from board.sim.scenario import loads_scenario

        return loads_scenario(json.dumps(doc))

    def write_scenario(self, doc, name="scenario.json"):
        path = self.tmp_path / name
        path.write_text(json.dumps(doc))
        return str(path)

    def timeline(self, scenario):
        from board.sim.timeline import compile_timeline

        key = id(scenario)
        if key not in self._timelines:  # (the scenario is kept, so its id stays its own)
            self._timelines[key] = (scenario, compile_timeline(scenario, self.synth))
        return self._timelines[key][1]

    # -------------------------------------------------------------- data dirs
    def password_file(self, password=PASSWORD, name="pw"):
        path = self.tmp_path / name
        path.write_text(password + "\n")
        path.chmod(0o600)  # as a careful technician keeps it (no warning)
        return str(path)

    def init_data_dir(self, path):
        """An initialised data dir at ``path`` (a copy of one made once per test)."""
        if self._template is None:
            self._template = str(self.tmp_path / "template")
            # The recovery key of every data dir made here (they are copies of one key store).
            self.recovery_key = KeyStore(self._template, kdf_params=CHEAP_KDF).initialise("admin", PASSWORD)
        shutil.copytree(self._template, path)
        return str(path)

    def unlock(self, data_dir):
        return KeyStore(data_dir).unlock("admin", PASSWORD)

    def store(self, data_dir):
        from firmware.recording.store import RecordingStore
        from firmware.signing import load_signer

        # As the box opens it: recovery signs what it makes partial.
        return RecordingStore(data_dir, signer=load_signer(data_dir))

    # -------------------------------------------------------------- the box
    def run(
        self, scenario, data_dir, config=None, until_us=None, before_start=None, snapshots=(), vault=None
    ):
        """Run the box on ``scenario`` to its end (or ``until_us``); returns a :class:`Run`.

        ``snapshots``: ``(t_us, dest)`` pairs; at clock time ``t_us`` the data
        dir is copied to ``dest`` as a power cut would leave it then (see
        :meth:`snapshot`).
        """
        from firmware.box import open_sim_box
        from firmware.bus import Alarm

        box = open_sim_box(
            scenario, data_dir, synth=self.synth, config=config, period_ms=PERIOD_MS, vault=vault
        )
        run = Run(str(data_dir), scenario, box.board.timeline, recovered=box.recovered)
        box.bus.subscribe(Alarm, run.alarms.append)
        if before_start is not None:
            before_start(box)
        for t_us, dest in snapshots:
            box.clock.call_at(t_us, lambda dest=dest: self.snapshot(data_dir, dest))
        box.start()
        try:
            if until_us is None:
                assert box.board.run()
            else:
                box.clock.run_until(until_us)
        finally:
            box.stop()
        return run

    @staticmethod
    def snapshot(data_dir, dest):
        """Copy ``data_dir`` to ``dest`` as a crash at this moment would leave it.

        Call it between two events of the simulated box (from a clock timer):
        every chunk written so far is synced, and each SQLite database is
        copied in its last committed state (the backup API).
        """
        import sqlite3

        data_dir = str(data_dir)
        for root, _dirs, files in os.walk(data_dir):
            target = os.path.join(dest, os.path.relpath(root, data_dir))
            os.makedirs(target, exist_ok=True)
            for name in files:
                if name.endswith((".db-wal", ".db-shm")):
                    continue
                src = os.path.join(root, name)
                if name.endswith(".db"):
                    with (
                        contextlib.closing(sqlite3.connect(src)) as a,
                        contextlib.closing(sqlite3.connect(os.path.join(target, name))) as b,
                    ):
                        a.backup(b)
                else:
                    shutil.copy2(src, target)

    def source(self, scenario, line, t0_us, n):
        """The ``n`` samples that were on ``line`` from clock time ``t0_us``, as captured.

        A fresh simulated board renders the scenario's capture periods (same
        grid, noise and signals as in the run) and they are cut to the range.
        """
        from board.hat import load_hat
        from board.sim.board import SimBoard
        from firmware.clock import SimClock

        board = SimBoard(
            self.timeline(scenario),
            load_hat(scenario.hat),
            SimClock(),
            period_ms=PERIOD_MS,
            noise_dbm0=scenario.noise_dbm0,
            seed=scenario.seed,
        )
        period_us, frames = board.period_us, board.period_frames
        first = t0_us - t0_us % period_us
        skip = (t0_us - first) * RATE // 1_000_000
        count = -(-(skip + n) // frames)
        pieces = [board.line_audio(line, first + k * period_us, frames) for k in range(count)]
        return np.concatenate(pieces)[skip : skip + n]

    # -------------------------------------------------------------- reading back
    @staticmethod
    def rows(data_dir):
        from firmware.recording.store import RecordingStore

        store = RecordingStore(data_dir)
        try:
            return store.all()
        finally:
            store.close()

    def calls(self, data_dir):
        """The call log as ``linekeeper calls --json`` prints it."""
        status, out, err = self.cli(
            "calls", "--data-dir", data_dir, "--password-file", self.password_file(), "--json"
        )
        assert status == 0, err
        return [json.loads(line) for line in out.splitlines()]

    @staticmethod
    def call_id_of(calls, scenario, truth):
        """The id the box gave the call of scenario ``truth`` (same line, answered together)."""
        from firmware.calls.calllog import iso_ms

        for call in calls:
            if call["line"] == truth.line and call["started_at"] == iso_ms(
                scenario.start_wall_us + truth.started_us
            ):
                return call["id"]
        raise AssertionError("no call in the log for %r" % (truth,))

    @staticmethod
    def clock_us(scenario, wall_us):
        return wall_us - scenario.start_wall_us

    # -------------------------------------------------------------- after a crash
    def check_after_crash(
        self, data_dir, scenario, t_lo_us, t_hi_us, what, torn_chunk_us=0, loss_limit_us=LOSS_LIMIT_US
    ):
        """The guarantees after a crash known to have happened in ``[t_lo_us, t_hi_us]``.

        The database opens and is intact; the start-up recovery sweep leaves
        every recording ``complete`` or ``partial``; ``verify --password-file``
        passes; every call under way before the crash has its recording; every
        partial one exports the line's audio up to within 1 s of the crash
        (``loss_limit_us``; measured from ``t_hi_us``; for the one exception see
        test_crash_kill).
        ``torn_chunk_us``: how much longer than its audio a partial recording's
        recorded duration may be (a last record garbled at its full length
        counts as a chunk until the key shows otherwise).
        Returns ``{"loss_us": [per partial recording], "empty": n}``.
        """
        import sqlite3

        with contextlib.closing(sqlite3.connect(os.path.join(data_dir, "calls.db"))) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", what
            # When each call's recording began: off-hook (out) or the answer (in).
            began = {
                i: self.clock_us(scenario, t)
                for i, t in db.execute(
                    "SELECT id, CASE direction WHEN 'out' THEN started_at ELSE answered_at END FROM calls"
                )
                if t is not None
            }
            ended = dict(db.execute("SELECT id, ended_at FROM calls"))
        store = self.store(data_dir)
        try:
            store.recover()  # what the box does when it starts
        finally:
            store.close()
        rows = self.rows(data_dir)
        assert rows, "%s: nothing was recording" % what
        assert {r["state"] for r in rows} <= {"complete", "partial"}, what
        status, out, err = self.verify(data_dir)
        assert status == 0, (what, out, err)
        calls = {c["id"]: c for c in self.calls(data_dir)}
        assert {i for i, t in began.items() if t < t_lo_us - 100_000} <= {r["call_id"] for r in rows}, what
        found = {"loss_us": [], "empty": 0}
        for row in rows:
            if row["state"] == "complete":
                continue
            t0_us = self.clock_us(scenario, row["started_at"])
            # The line's audio of the call goes on until the crash, or until the call's end
            # when the card has it (a partial recording of a call that ended before the crash:
            # under a hold-up capacitor its finished row may wait for the interval's sync).
            ended_at = ended.get(row["call_id"])
            until_us = t_hi_us if ended_at is None else min(t_hi_us, self.clock_us(scenario, ended_at))
            wav = os.path.join(
                os.path.dirname(data_dir), "%s-%s.wav" % (os.path.basename(data_dir), row["id"])
            )
            status, out, err = self.export(data_dir, row["call_id"], wav)
            if not row["bytes"] or "holds no audio" in err:
                # Crashed before the first chunk was on the card (or it was torn): nothing.
                assert status == 2 and "holds no audio" in err, (what, err)
                found["empty"] += 1
                loss_us = until_us - t0_us
                # An inbound recording's pre-roll is already a second old when it starts.
                assert loss_us <= loss_limit_us + (
                    2 * PERIOD_US if calls[row["call_id"]]["direction"] == "in" else 0
                ), (what, row)
                found["loss_us"].append(loss_us)
                continue
            assert status == 0, (what, err)
            y = self.read_wav(wav)
            # Whole chunks of 960 ms; a prefix decodes to all but the codec's 6.5 ms look-ahead.
            # (Cut as the file was being closed, the last, shorter chunk's length is taken
            # from the call's end, to within its detection.)
            error_us = row["duration_s"] * 1e6 - (len(y) * 125 + 6_500)
            closing = ended_at is not None
            low, high = (-250_000, 250_000) if closing else (-1_000, 1_000)
            assert low <= error_us <= high + torn_chunk_us, (what, row, error_us)
            loss_us = until_us - (t0_us + len(y) * 125)
            found["loss_us"].append(loss_us)
            assert loss_us <= loss_limit_us, (what, row, loss_us)
            same_audio(self.source(scenario, calls[row["call_id"]]["line"], t0_us, len(y)), y)
        return found

    @staticmethod
    def read_wav(path):
        with wave.open(str(path), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
            return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.int16)

    def cli(self, *args):
        """``(exit status, stdout, stderr)`` of ``linekeeper ARGS`` run in this process."""
        umask = os.umask(0o022)
        try:
            return run_linekeeper(*args)
        finally:
            os.umask(umask)

    def export(self, data_dir, call_id, out, password_file=None, reason="a test export of the call"):
        return self.cli(*export_args(data_dir, call_id, out, password_file or self.password_file(), reason))

    def verify(self, data_dir, password_file=None, with_key=True):
        args = ["verify", "--data-dir", data_dir]
        if with_key:
            args += ["--password-file", password_file or self.password_file()]
        return self.cli(*args)


def same_audio(x, y, window=400):
    """The export ``y`` is the line's audio ``x``: where the line carried speech, so does it.

    Over 50 ms windows in which the line was above -35 dBm0, the export's level
    must be within 6 dB of the line's in nine windows out of ten (a codec at
    11 kbit/s moves the level of single windows; missing or misplaced audio
    moves it by tens of dB).
    """
    levels = []
    for k in range(0, len(x) - window + 1, window):
        src = (x[k : k + window].astype(float) ** 2).mean()
        if 10 * np.log10(src / 16090.0**2 + 1e-12) > -35:
            out = (y[k : k + window].astype(float) ** 2).mean()
            levels.append(abs(10 * np.log10(src / max(out, 1e-9))))
    if len(levels) >= 5:
        assert np.median(levels) <= 3.0 and np.mean(np.array(levels) <= 6.0) >= 0.9, levels
