"""Caller ID from other senders than ours: what real exchanges and line cards do differently.

Two modulators that are not our generator's ``fsk_tx`` path:

* ``peer``: a plain phase-accumulator V.23 modulator written here in numpy,
  with the knobs real equipment turns: an oscillator restarted for every
  character (a phase jump at each character boundary: the cause of the
  ``framing`` errors the receiver gave, see firmware/dsp/fsk.py), a phase
  jump between seizure, marks and message, 1.5 or 2 stop bits, a bit clock
  off by up to 1 %, and level steps between the sections;
* spandsp's ``adsi_tx`` (through the firmware's binding), with level steps
  cut into its output.

spandsp's own receiver, ``adsi_rx`` (bound here, for the test only), is the
reference: what it decodes, ``analyze`` must decode too, and never a wrong
number at 0 to 30 dB S/N.
"""

import cffi
import numpy as np
import pytest

from firmware.dsp import analyze
from telephony import generate as gen
from telephony import spandsp

RATE = 8000
CALLERS = [
    ("01632960123", "ACME LTD", "03020900"),
    ("02079460000", "SMITH J", "12312359"),
    ("447700900123", "O'BRIEN & CO", "07041230"),
]


def peer(
    message,
    *,
    restart_per_char=False,
    section_jumps=False,
    stop_bits=1.0,
    baud=1200.0,
    levels_db=(0.0, 0.0, 0.0),
    seizure_bits=300,
    mark_bits=180,
    level_dbm0=-13.5,
    seed=1,
):
    """A V.23 caller-ID burst (seizure, marks, message + checksum, 8-N-1) as int16 audio."""
    rng = np.random.default_rng(seed)
    framed = bytes(message) + bytes([gen.checksum(bytes(message))])
    chars = [[0] + [(b >> i) & 1 for i in range(8)] + [1] for b in framed]
    sections = ([[i & 1 for i in range(seizure_bits)]], [[1] * mark_bits], chars + [[1] * 5])
    out, phase, carry = [], 0.0, 0.0
    for section, level_db in zip(sections, levels_db, strict=False):
        if section_jumps:
            phase = rng.uniform(0, 2 * np.pi)
        amp = 10 ** (level_db / 20)
        for char in section:
            if restart_per_char and section is sections[2]:
                phase = 0.0  # the oscillator starts afresh with each character
            for k, bit in enumerate(char):
                length = (stop_bits if section is sections[2] and k == 9 else 1.0) * RATE / baud
                n = int(length + carry)
                carry += length - n
                f = 1300.0 if bit else 2100.0
                ph = phase + 2 * np.pi * f * np.arange(1, n + 1) / RATE
                out.append(amp * np.sin(ph))
                phase = float(ph[-1]) if n else phase
    x = np.concatenate(out)
    x *= gen.DBM0_RMS * 10 ** (level_dbm0 / 20) / np.sqrt(np.mean(x**2))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def adsi_tx_with_steps(message, steps_db=(0.0, -4.0, -8.0)):
    """spandsp's adsi_tx burst, the level stepping down at the marks and at the message."""
    audio = gen.caller_id("v23", message=message).astype(np.float64)
    seizure_end = 300 * RATE // 1200
    marks_end = seizure_end + 180 * RATE // 1200
    start = int(np.flatnonzero(np.abs(audio) > 0)[0])
    for (a, b), db in zip(
        ((0, start + seizure_end), (start + seizure_end, start + marks_end), (start + marks_end, len(audio))),
        steps_db,
        strict=False,
    ):
        audio[a:b] *= 10 ** (db / 20)
    return np.clip(np.rint(audio), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def adsi_rx():
    """spandsp's reference receiver: ``adsi_rx(audio) -> [message bytes]``."""
    ffi = cffi.FFI()
    ffi.cdef("""
        typedef struct adsi_rx_state_s adsi_rx_state_t;
        typedef void (*put_msg_func_t)(void *user_data, const uint8_t *msg, int len);
        adsi_rx_state_t *adsi_rx_init(adsi_rx_state_t *s, int standard, put_msg_func_t put_msg,
                                      void *user_data);
        int adsi_rx(adsi_rx_state_t *s, const int16_t amp[], int len);
        int adsi_rx_free(adsi_rx_state_t *s);""")
    lib = ffi.dlopen(spandsp.LIBRARY)

    def run(audio):
        got = []
        callback = ffi.callback(
            "void(void *, const uint8_t *, int)", lambda _u, msg, n: got.append(bytes(ffi.buffer(msg, n)))
        )
        state = lib.adsi_rx_init(ffi.NULL, spandsp.ADSI_STANDARD_CLIP, callback, ffi.NULL)
        x = np.ascontiguousarray(audio, dtype=np.int16)
        lib.adsi_rx(state, ffi.cast("int16_t *", x.ctypes.data), len(x))
        lib.adsi_rx_free(state)
        return got

    return run


def message(number, name, datetime):
    return bytes(gen.cid_message("v23", number, name, datetime, None, None, False))


def numbers(audio):
    events = [
        e.to_json() for e in analyze.analyse(gen.concat(gen.silence(500), audio, gen.silence(500)), "uk")
    ]
    return [(e["event"], e.get("number") or e.get("reason")) for e in events]


VARIANTS = {
    "oscillator restarted per character": dict(restart_per_char=True),
    "restart, 1.5 stop bits": dict(restart_per_char=True, stop_bits=1.5),
    "restart, 2 stop bits, clock -1 %": dict(restart_per_char=True, stop_bits=2.0, baud=1188.0),
    "restart, clock +1 %, level steps": dict(restart_per_char=True, baud=1212.0, levels_db=(0.0, -3.0, -6.0)),
    "phase jumps between sections": dict(section_jumps=True),
    "2 stop bits, level steps up": dict(stop_bits=2.0, levels_db=(-6.0, -3.0, 0.0)),
    "BT's shortest preamble, restart": dict(restart_per_char=True, seizure_bits=96, mark_bits=55),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c[0])
def test_a_peer_modulator_is_decoded_as_spandsps_reference_decodes_it(adsi_rx, variant, caller):
    burst = peer(message(*caller), **VARIANTS[variant])
    assert [m[: len(message(*caller))] for m in adsi_rx(gen.concat(gen.silence(100), burst))] == [
        message(*caller)
    ], "the reference receiver does not take this signal"
    assert numbers(burst) == [("caller_id", caller[0])]


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c[0])
def test_adsi_tx_with_level_steps_is_decoded(adsi_rx, caller):
    burst = adsi_tx_with_steps(message(*caller))
    assert adsi_rx(burst), "the reference receiver does not take this signal"
    assert numbers(burst) == [("caller_id", caller[0])]


def test_peer_bursts_never_give_a_wrong_number_from_0_to_30_db_snr():
    rng = np.random.default_rng(2026)
    decoded = {}
    for snr in range(0, 31, 6):
        parts, sent = [gen.silence(600)], set()
        for i in range(8):
            caller = CALLERS[i % len(CALLERS)]
            kw = VARIANTS[sorted(VARIANTS)[i % len(VARIANTS)]]
            level = float(rng.uniform(-25, -13))
            burst = peer(message(*caller), level_dbm0=level, seed=i, **kw)
            noise = gen.white_noise(len(burst) + 4800, level - snr, seed=int(rng.integers(2**31)))
            parts.append(gen.mix(gen.concat(burst, gen.silence(600)), noise))
            sent.add(caller[0])
        got = [n for kind, n in numbers(gen.concat(*parts)) if kind == "caller_id"]
        assert set(got) <= sent, "a wrong number at %d dB S/N: %s" % (snr, got)
        decoded[snr] = len(got)
    assert decoded[30] == 8 and decoded[18] >= 7, decoded
