"""Signal generators: levels, lengths, timing and errors."""

import math

import numpy as np
import pytest

from telephony import generate as gen


def test_level_of_a_0_dbm0_sine_and_full_scale():
    assert gen.level_dbm0(gen.sine([1000], [0.0], 1000)) == pytest.approx(0.0, abs=0.02)
    full = np.rint(32767 * np.sin(2 * math.pi * 1000 * np.arange(8000) / 8000)).astype(np.int16)
    assert gen.level_dbm0(full) == pytest.approx(3.14, abs=0.02)
    assert gen.level_dbm0(gen.silence(100)) == float("-inf")


def test_level_accepts_bytes():
    tone = gen.sine([700], [-10.0], 200)
    assert gen.level_dbm0(tone.tobytes()) == pytest.approx(-10.0, abs=0.05)


@pytest.mark.parametrize("level", [-10, -30])
def test_white_noise_level_and_seed(level):
    a = gen.white_noise(80000, level, seed=1)
    assert a.dtype == np.int16
    assert gen.level_dbm0(a) == pytest.approx(level, abs=0.05)
    assert (a == gen.white_noise(80000, level, seed=1)).all()
    assert not (a == gen.white_noise(80000, level, seed=2)).all()


def test_dtmf_timing_and_level():
    tones = gen.dtmf("159", level_dbm0=-4, on_ms=50, off_ms=50)
    assert len(tones) == 3 * 800
    assert gen.level_dbm0(tones[:400]) == pytest.approx(-4 + 10 * math.log10(2), abs=0.1)
    assert not tones[420:800].any()


def amplitude(x, f):
    return abs(np.dot(x.astype(float), np.exp(-2j * math.pi * f * np.arange(len(x)) / 8000)))


@pytest.mark.parametrize("twist_db", [8, -4])
def test_dtmf_twist_synthesis(twist_db):
    tone = gen.dtmf("1", level_dbm0=-6, twist_db=twist_db)[:400]
    assert 20 * math.log10(amplitude(tone, 697) / amplitude(tone, 1209)) == pytest.approx(twist_db, abs=0.1)
    assert gen.level_dbm0(tone) == pytest.approx(
        10 * math.log10(10**-0.6 + 10 ** ((-6 - abs(twist_db)) / 10)), abs=0.05
    )


def test_dtmf_offset_synthesis():
    tone = gen.dtmf("1", level_dbm0=-6, freq_offset=(0.0, 0.05))[:400]
    assert amplitude(tone, 1209 * 1.05) > 10 * amplitude(tone, 1209)


def test_dtmf_rejects_non_keys():
    with pytest.raises(ValueError, match="not DTMF keys"):
        gen.dtmf("12E")


@pytest.mark.parametrize("preamble, bits", [("etsi", 480), ("bt_short", 151), ((300, 180), 480)])
def test_fsk_caller_id_length_follows_preamble(preamble, bits):
    message = gen.cid_message("v23", number="0123")
    audio = gen.caller_id("v23", message=message, preamble=preamble)
    expected_bits = bits + 10 * (len(message) + 1) + 5
    assert len(audio) == pytest.approx(expected_bits * 8000 / 1200, abs=10)


def test_caller_id_level():
    assert gen.level_dbm0(gen.caller_id("bell202", number="123", level_dbm0=-20)) == pytest.approx(
        -20, abs=0.01
    )


def test_cid_message_structure_and_checksum():
    msg = gen.cid_message("v23", number="01632960123", name="ACME LTD", datetime="03020900")
    assert msg[0] == 0x80 and msg[1] == len(msg) - 2
    assert msg[2:12] == b"\x01\x0803020900"
    assert (sum(msg) + gen.checksum(msg)) & 0xFF == 0
    assert gen.cid_message("v23", absence="private").endswith(b"\x04\x01P\x08\x01P")
    with pytest.raises(ValueError):
        gen.cid_message("v23", number="1", sdmf=True)


def test_fsk_bits_framing():
    bits = gen.fsk_bits(b"\x80", (4, 3), postamble=2)
    assert bits.tolist() == [0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_unknown_standard_rejected():
    with pytest.raises(ValueError, match="v23, bell202, dtmf"):
        gen.caller_id("v21", number="1")


@pytest.mark.parametrize(
    "fmt, absence, text",
    [
        ("AC", None, "A0123C"),
        ("A#", None, "A0123#"),
        ("DC", None, "D0123C"),
        ("#", None, "0123#"),
        ("AC", "private", "B10C"),
        ("A#", "private", "D01#"),
        ("AC", "unavailable", "B00C"),
        ("01#", None, "01#"),
    ],
)
def test_dtmf_cid_strings(fmt, absence, text):
    number = None if absence or fmt[0].isdigit() else "0123"
    assert gen.dtmf_cid_string(number=number, absence=absence, fmt=fmt) == text


def test_alert_tone_length_and_content():
    alert = gen.alert_tone(-13, 100)
    assert len(alert) == 800
    spectrum = np.abs(np.fft.rfft(alert.astype(float)))
    peaks = sorted(np.fft.rfftfreq(800, 1 / 8000)[np.argsort(spectrum)[-2:]])
    assert peaks == pytest.approx([2130, 2750], abs=10)
    assert gen.level_dbm0(alert) == pytest.approx(-13 + 10 * math.log10(2), abs=0.1)


@pytest.mark.parametrize(
    "country, name, on_ms, off_ms",
    [
        ("uk", "busy", 375, 375),
        ("us", "busy", 500, 500),
        ("us", "congestion", 250, 250),
        ("us", "reorder", 250, 250),
    ],
)
def test_cadence(country, name, on_ms, off_ms):
    audio = gen.call_progress(name, country, 4000)
    assert len(audio) == 32000
    on = np.abs(audio.astype(int)).reshape(-1, 40).max(axis=1) > 0  # 5 ms frames
    changes = np.flatnonzero(np.diff(on.astype(int))) + 1
    assert changes[0] * 5 == pytest.approx(on_ms, abs=5)
    assert (changes[1] - changes[0]) * 5 == pytest.approx(off_ms, abs=5)


def test_continuous_tones_do_not_stop():
    for country, name in (("uk", "dial"), ("uk", "unobtainable"), ("us", "dial")):
        audio = gen.call_progress(name, country, 3000)
        assert np.abs(audio.astype(int)).reshape(-1, 40).max(axis=1).min() > 0


def test_fractional_levels():
    assert gen.level_dbm0(gen.tone(400, 0, -13.5, duration_ms=1000)) == pytest.approx(-13.5, abs=0.02)
    assert gen.level_dbm0(gen.scale_to_dbm0(gen.white_noise(8000, -20, seed=1), -7.25)) == pytest.approx(
        -7.25, abs=0.01
    )


def test_mix_and_concat():
    a, b = np.full(3, 30000, np.int16), np.full(5, 10000, np.int16)
    assert gen.mix(a, b).tolist() == [32767, 32767, 32767, 10000, 10000]
    assert len(gen.concat(a, b)) == 8
