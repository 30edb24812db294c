"""The recording-policy lab: scenarios run through `linekeeper sim`, and level measurements."""

import json
import os
import shutil

import numpy as np

from firmware.storage.keystore import Argon2Params, KeyStore
from telephony.levels import DBM0_RMS

from support.cli import calls_args, export_args, run_linekeeper

PASSWORD = "correct horse battery 7"


CHEAP_KDF = Argon2Params(memory_kib=8, iterations=1)  # these tests are not about the KDF


RATE = 8000


START = "2026-03-02T09:00:00Z"  # a Monday


def scenario(calls, lines=4, config=None, **extra):
    doc = {"start": START, "country": "uk", "lines": lines, "calls": calls}
    if config is not None:
        doc["config"] = config
    doc.update(extra)
    return doc


def policy(rules=None, consent=None, pci=None):
    out = {}
    for name, value in (("rules", rules), ("consent", consent), ("pci", pci)):
        if value is not None:
            out[name] = value
    return {"policy": out}


class PolicyLab:
    START = START

    def __init__(self, tmp_path, synth):
        self.tmp_path = tmp_path
        self.synth = synth
        self._template = None
        self._n = 0

    # ------------------------------------------------------------ running
    def data_dir(self, name=None):
        """A fresh initialised data dir (keys made once per lab, copied)."""
        if self._template is None:
            self._template = str(self.tmp_path / "template")
            KeyStore(self._template, kdf_params=CHEAP_KDF).initialise("admin", PASSWORD)
        self._n += 1
        path = str(self.tmp_path / (name or "data%d" % self._n))
        shutil.copytree(self._template, path)
        return path

    def sim(self, doc, data_dir=None, *extra):
        """Run ``linekeeper sim`` on scenario ``doc``; returns ``(data_dir, calls)``."""
        data_dir = data_dir or self.data_dir()
        path = os.path.join(self.tmp_path, "scenario-%s.json" % os.path.basename(data_dir))
        with open(path, "w") as f:
            json.dump(doc, f)
        status, out, err = self.cli("sim", path, "--data-dir", data_dir, *extra)
        assert status == 0, err
        return data_dir, self.calls(data_dir)

    def calls(self, data_dir):
        status, out, err = self.cli(*calls_args(data_dir, PASSWORD, "--json"))
        assert status == 0, err
        return sorted(
            (json.loads(line) for line in out.splitlines()), key=lambda c: (c["started_at"], c["line"])
        )

    cli = staticmethod(run_linekeeper)  # (exit status, stdout, stderr), in this process

    def export(self, data_dir, call_id, out, password_file):
        """``linekeeper export`` of ``call_id`` to ``out``, with a reason: (status, stdout, stderr)."""
        return self.cli(*export_args(data_dir, call_id, out, password_file))

    # ------------------------------------------------------------ reading back
    @staticmethod
    def recordings(data_dir):
        from firmware.recording.store import RecordingStore

        store = RecordingStore(data_dir)
        try:
            return store.all()
        finally:
            store.close()

    @staticmethod
    def decode(data_dir, call_id):
        """``(samples, started_wall_us)`` of the call's recording, decrypted with the key."""
        from firmware.recording import codec
        from firmware.recording.store import RecordingStore

        store = RecordingStore(data_dir)
        key = KeyStore(data_dir).unlock("admin", PASSWORD)
        try:
            row = store.for_call(call_id)
            assert row is not None, "call %d has no recording" % call_id
            row, data = store.read_verified(row["id"], key)
            return codec.decode(data, row["profile"]), row["started_at"]
        finally:
            key.forget()
            store.close()

    def source(self, doc, line, t0_us, n):
        """The ``n`` samples that were on ``line`` from clock time ``t0_us``, as captured
        (what the simulated exchange and callers put there; not what the box played)."""
        from board.hat import load_hat
        from board.sim.board import SimBoard
        from board.sim.scenario import loads_scenario
        from board.sim.timeline import compile_timeline
        from firmware.clock import SimClock

        sc = loads_scenario(json.dumps(doc))
        board = SimBoard(
            compile_timeline(sc, self.synth),
            load_hat(sc.hat),
            SimClock(),
            period_ms=20,
            noise_dbm0=sc.noise_dbm0,
            seed=sc.seed,
        )
        first = t0_us - t0_us % board.period_us
        skip = (t0_us - first) * RATE // 1_000_000
        count = -(-(skip + n) // board.period_frames)
        pieces = [
            board.line_audio(line, first + k * board.period_us, board.period_frames) for k in range(count)
        ]
        return np.concatenate(pieces)[skip : skip + n]

    @staticmethod
    def files(data_dir):
        """Every file under ``data_dir`` with its bytes."""
        for root, _dirs, names in os.walk(data_dir):
            for name in names:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    yield path, f.read()


# ------------------------------------------------------------------ measuring
def wall_us(iso):
    import datetime as dt

    t = dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return round(t.timestamp() * 1000) * 1000


def at(samples, start_wall_us, wall, seconds):
    """``seconds`` of ``samples`` (a recording starting at ``start_wall_us``) from ``wall`` µs."""
    i = (wall - start_wall_us) * RATE // 1_000_000
    return samples[max(0, i) : max(0, i + int(seconds * RATE))]


def level_dbm0(x):
    x = np.asarray(x, dtype=np.float64)
    power = float(np.mean(x * x)) if len(x) else 0.0
    return 10 * np.log10(power / DBM0_RMS**2) if power > 0 else -np.inf


def tone_level_dbm0(x, hz, bandwidth_hz=40):
    """Level (dBm0) of the energy within ``bandwidth_hz`` of ``hz`` in ``x``."""
    x = np.asarray(x, dtype=np.float64)
    spectrum = np.fft.rfft(x * np.hanning(len(x)))
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    band = np.abs(freqs - hz) <= bandwidth_hz / 2
    # Parseval with the Hann window's power gain (3/8).
    power = 2 * np.sum(np.abs(spectrum[band]) ** 2) / len(x) ** 2 / 0.375
    return 10 * np.log10(power / DBM0_RMS**2) if power > 0 else -np.inf


def tone_times(x, hz, threshold_dbm0=-30, window=400):
    """Start times (s) of bursts of ``hz`` in ``x``: 50 ms windows above the threshold."""
    starts, on = [], False
    for k in range(0, len(x) - window + 1, window // 4):
        hit = tone_level_dbm0(x[k : k + window], hz) > threshold_dbm0
        if hit and not on:
            starts.append(k / RATE)
        on = hit
    return starts


for _f in (scenario, policy, wall_us, at, level_dbm0, tone_level_dbm0, tone_times):
    setattr(PolicyLab, _f.__name__, staticmethod(_f))
