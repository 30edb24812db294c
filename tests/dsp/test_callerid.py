"""Caller-ID acceptance (issue 3; docs/telephony.md): V.23, Bell 202 and DTMF, on-hook."""

import numpy as np
import pytest

from firmware.dsp.events import AlertTone, CallerId, CallerIdError, DtmfDigit
from telephony import generate as gen

COUNTRY = {"v23": "uk", "bell202": "us"}
FIELDS = dict(number="01632960123", name="ACME LTD", datetime="03020900")


def cids(events):
    return [e for e in events if isinstance(e, CallerId)]


def errors(events):
    return [e for e in events if isinstance(e, CallerIdError)]


def random_caller(rng):
    number = "".join(rng.choice(list("0123456789"), int(rng.integers(6, 15))))
    name = (
        "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ &.-"), int(rng.integers(2, 16)))).strip() or "X"
    )
    datetime = "%02d%02d%02d%02d" % (
        rng.integers(1, 13),
        rng.integers(1, 29),
        rng.integers(0, 24),
        rng.integers(0, 60),
    )
    return number, name, datetime


def message_stream(standard, count, seed, level_range, snr_db=None, gap_ms=600):
    """``count`` different caller-ID messages one after another (with noise if ``snr_db``).

    Returns (audio, list of (number, name, datetime)).
    """
    rng = np.random.default_rng(seed)
    parts, sent = [gen.silence(gap_ms)], []
    noise_parts = []
    for _ in range(count):
        number, name, datetime = random_caller(rng)
        level = float(rng.uniform(*level_range))
        burst = gen.concat(
            gen.caller_id(standard, number=number, name=name, datetime=datetime, level_dbm0=level),
            gen.silence(gap_ms),
        )
        parts.append(burst)
        if snr_db is not None:
            noise_parts.append(gen.white_noise(len(burst), level - snr_db, seed=int(rng.integers(2**31))))
        sent.append((number, name, datetime))
    audio = gen.concat(*parts)
    if snr_db is not None:
        audio = gen.mix(audio, gen.concat(gen.silence(gap_ms), *noise_parts))
    return audio, sent


@pytest.mark.parametrize("standard", ["v23", "bell202"])
@pytest.mark.parametrize("level", [-10, -20, -30, -36])
def test_fsk_decoded_from_minus_10_to_minus_36_dbm0(detect, pad, standard, level):
    events = detect(pad(gen.caller_id(standard, level_dbm0=level, **FIELDS)), country=COUNTRY[standard])
    assert [(e.standard, e.number, e.name, e.datetime, e.absence) for e in events] == [
        (standard, "01632960123", "ACME LTD", "03020900", None)
    ]


@pytest.mark.parametrize("standard", ["v23", "bell202"])
@pytest.mark.parametrize("level", [-10, -36])
@pytest.mark.parametrize(
    "tone_offset, bitrate_offset",
    [
        (0.015, 0),
        (-0.015, 0),
        (0, 0.01),
        (0, -0.01),
        (0.015, 0.01),
        (-0.015, -0.01),
        (0.015, -0.01),
        (-0.015, 0.01),
    ],
)
def test_fsk_tone_and_bit_rate_offsets(detect, pad, standard, level, tone_offset, bitrate_offset):
    signal = gen.caller_id(
        standard, level_dbm0=level, tone_offset=tone_offset, bitrate_offset=bitrate_offset, **FIELDS
    )
    events = detect(pad(signal), country=COUNTRY[standard])
    assert [e.number for e in cids(events)] == ["01632960123"]


@pytest.mark.parametrize("standard", ["v23", "bell202"])
def test_99_percent_of_400_messages_with_noise_12_db_below(detect_stats, standard):
    audio, sent = message_stream(standard, 400, seed=12 + len(standard), level_range=(-36, -10), snr_db=12)
    events, stats = detect_stats(audio, block=8000, country=COUNTRY[standard])
    got = [(e.number, e.name, e.datetime) for e in cids(events)]
    assert set(got) <= set(sent), "a wrong caller ID was reported"
    assert len(got) == len(set(got))
    assert len(got) >= 0.99 * len(sent), "%d of %d decoded" % (len(got), len(sent))
    assert stats["AlertTone"] == 0, "FSK in noise taken for an alert signal"


@pytest.mark.parametrize("standard", ["v23", "bell202"])
def test_never_a_wrong_number_or_name_from_0_to_30_db_snr(detect_stats, standard):
    decoded = {}
    for snr in range(0, 31, 3):
        audio, sent = message_stream(standard, 30, seed=100 + snr, level_range=(-25, -13), snr_db=snr)
        events, stats = detect_stats(audio, block=8000, country=COUNTRY[standard])
        got = [(e.number, e.name, e.datetime) for e in cids(events)]
        assert set(got) <= set(sent), "wrong caller ID at %d dB S/N" % snr
        decoded[snr] = len(got)
        # what was not decoded was counted, never silently turned into something else
        assert stats["CallerIdError"] <= len(sent) - len(got) + 2 * len(sent)
    assert decoded[0] < 30 and decoded[30] == 30  # the test spans failure to success


@pytest.mark.parametrize("standard", ["v23", "bell202"])
def test_shortest_bt_preamble_decodes(detect, pad, standard):
    signal = gen.caller_id(standard, preamble="bt_short", level_dbm0=-30, **FIELDS)
    assert [e.number for e in cids(detect(pad(signal), country=COUNTRY[standard]))] == ["01632960123"]


def test_gaps_between_characters_are_tolerated(detect, pad):
    signal = gen.caller_id("v23", gap_bits=20, **FIELDS)  # 16.7 ms between characters
    assert [e.name for e in cids(detect(pad(signal)))] == ["ACME LTD"]


@pytest.mark.parametrize("standard", ["v23", "bell202"])
def test_bad_checksum_is_an_error_not_a_number(detect_stats, pad, standard):
    events, stats = detect_stats(
        pad(gen.caller_id(standard, bad_checksum=True, **FIELDS)), country=COUNTRY[standard]
    )
    assert cids(events) == []
    assert [(e.reason, e.standard) for e in errors(events)] == [("checksum", standard)]
    assert stats["caller_id_error.checksum"] == 1


def test_cut_off_message_is_a_framing_error(detect, pad):
    signal = gen.caller_id("v23", **FIELDS)
    events = detect(pad(signal[: len(signal) - 8 * 60]))  # last 60 ms lost
    assert cids(events) == [] and [e.reason for e in errors(events)] == ["framing"]


@pytest.mark.parametrize(
    "message",
    [
        bytes([0x80, 5, 0x02, 3]) + b"0A1",  # letters in a number
        bytes([0x80, 10, 0x01, 8]) + b"13450000",  # month 13
        bytes([0x80, 6, 0x02, 5]) + b"012",  # parameter overruns the message
        bytes([0x55, 3]) + b"123",  # unknown message type
    ],
)
def test_impossible_structure_gives_no_caller_id(detect, pad, message):
    events = detect(pad(gen.caller_id("v23", message=message)))
    assert cids(events) == []


def test_impossible_structure_with_good_checksum_counted_as_structure(detect_stats, pad):
    events, stats = detect_stats(pad(gen.caller_id("v23", message=bytes([0x80, 5, 0x02, 3]) + b"0A1")))
    assert [e.reason for e in errors(events)] == ["structure"]
    assert stats["caller_id_error.structure"] == 1


@pytest.mark.parametrize("standard", ["v23", "bell202"])
def test_withheld_number_is_private(detect, pad, standard):
    events = detect(
        pad(gen.caller_id(standard, absence="private", datetime="03020900")), country=COUNTRY[standard]
    )
    assert [(e.number, e.absence) for e in events] == [(None, "private")]


def test_unavailable_number(detect, pad):
    events = detect(pad(gen.caller_id("v23", absence="unavailable")))
    assert [(e.number, e.absence) for e in events] == [(None, "unavailable")]


def test_bell202_sdmf(detect, pad):
    events = detect(
        pad(gen.caller_id("bell202", number="6095551212", datetime="10011750", sdmf=True)), country="us"
    )
    assert [(e.number, e.datetime, e.name) for e in events] == [("6095551212", "10011750", None)]


def test_bell202_sdmf_private(detect, pad):
    events = detect(pad(gen.caller_id("bell202", absence="private", sdmf=True)), country="us")
    assert [(e.number, e.absence) for e in events] == [(None, "private")]


@pytest.mark.parametrize("standard, sdmf", [("v23", False), ("bell202", False), ("bell202", True)])
@pytest.mark.parametrize("waiting", [True, False])
def test_message_waiting(detect, pad, standard, sdmf, waiting):
    events = detect(
        pad(gen.caller_id(standard, message_waiting=waiting, sdmf=sdmf)), country=COUNTRY[standard]
    )
    assert [(e.message_waiting, e.number) for e in events] == [(waiting, None)]


@pytest.mark.parametrize("standard", ["v23", "bell202", "dtmf"])
def test_repeated_message_reported_once(detect_stats, pad, standard):
    one = gen.caller_id(standard, number="01632960123", name=None if standard == "dtmf" else "ACME LTD")
    events, stats = detect_stats(pad(one, gen.silence(400), one), country=COUNTRY.get(standard, "uk"))
    assert len(cids(events)) == 1
    assert stats["caller_id_repeat"] == 1


def test_same_caller_again_after_a_call_is_reported(pad):
    from firmware.dsp.detector import LineDsp

    events = []
    dsp = LineDsp("uk", on_event=events.append)
    burst = pad(gen.caller_id("v23", **FIELDS))
    dsp.feed(burst, 0)
    dsp.set_off_hook(True)
    dsp.set_off_hook(False)
    dsp.feed(burst, 10_000_000)
    dsp.flush()
    assert len(cids(events)) == 2


def test_uk_sin227_sequence_alert_then_fsk(detect, pad):
    signal = pad(
        gen.silence(100),
        gen.alert_tone(-13, 100),
        gen.silence(45),
        gen.caller_id("v23", **FIELDS),
        gen.silence(200),
    )
    events = detect(signal, t0_us=1_000_000)
    assert [type(e) for e in events] == [AlertTone, CallerId]
    assert events[0].t_us == pytest.approx(1_000_000 + 400_000, abs=20_000)
    # the caller ID's time is the start of its FSK burst (channel seizure)
    assert events[1].t_us == pytest.approx(1_000_000 + 545_000, abs=20_000)


def test_caller_id_only_while_on_hook(detect):
    signal = gen.concat(gen.silence(300), gen.caller_id("v23", **FIELDS), gen.silence(300))
    assert cids(detect(signal, off_hook=True)) == []


# ------------------------------------------------------------------ DTMF


@pytest.mark.parametrize(
    "fmt, number, absence, expected",
    [
        ("AC", "01632960123", None, ("01632960123", None)),
        ("A#", "01632960123", None, ("01632960123", None)),
        ("DC", "01632960123", None, ("01632960123", None)),
        ("D#", "01632960123", None, ("01632960123", None)),
        ("#", "01632960123", None, ("01632960123", None)),
        ("B00C", None, None, (None, "unavailable")),
        ("B10C", None, None, (None, "private")),
        ("D01#", None, None, (None, "private")),
        ("D00#", None, None, (None, "unavailable")),
        ("01#", None, None, (None, "private")),
        ("00#", None, None, (None, "unavailable")),
        ("AC", None, "private", (None, "private")),
        ("#", None, "unavailable", (None, "unavailable")),
    ],
)
def test_every_dtmf_caller_id_format(detect, pad, fmt, number, absence, expected):
    signal = gen.caller_id("dtmf", number=number, absence=absence, dtmf_format=fmt, level_dbm0=-10)
    events = detect(pad(signal), country="uk")
    assert [(e.standard, e.number, e.absence) for e in events] == [("dtmf",) + expected]


@pytest.mark.parametrize("country", ["uk", "us", "dtmf"])
def test_dtmf_caller_id_runs_in_parallel_in_every_country(detect, pad, country):
    events = detect(pad(gen.caller_id("dtmf", number="5551234", dtmf_format="AC")), country=country)
    assert [(e.standard, e.number) for e in events] == [("dtmf", "5551234")]


def test_dtmf_caller_id_digits_are_not_dialled_digits_on_hook(detect, pad):
    events = detect(pad(gen.caller_id("dtmf", number="01632960123", dtmf_format="AC")))
    assert not [e for e in events if isinstance(e, DtmfDigit)]


def test_dtmf_caller_id_t_is_its_first_digit(detect):
    signal = gen.concat(gen.silence(700), gen.caller_id("dtmf", number="01632960123"), gen.silence(1500))
    (event,) = detect(signal, t0_us=2_000_000)
    assert event.t_us == pytest.approx(2_700_000, abs=10_000)


def test_dtmf_caller_id_without_terminator_is_a_framing_error(detect, pad):
    signal = pad(gen.dtmf("A01632960123", level_dbm0=-10, on_ms=60, off_ms=60), gen.silence(1500))
    events = detect(signal)
    assert cids(events) == [] and [(e.reason, e.standard) for e in errors(events)] == [("framing", "dtmf")]


def test_dtmf_caller_id_with_a_lost_digit_is_not_a_wrong_number(detect, pad):
    tones = gen.dtmf("A01632960123C", level_dbm0=-10, on_ms=60, off_ms=60)
    tones[5 * 960 : 6 * 960] = 0  # the sixth digit ('2') lost on the line
    events = detect(pad(tones))
    assert cids(events) == [] and [e.reason for e in errors(events)] == ["framing"]


def test_dtmf_caller_id_ignored_when_standard_is_fsk_only(detect, pad):
    events = detect(pad(gen.caller_id("dtmf", number="01632960123")), standard="v23")
    assert events == []


def test_standard_override_picks_bell202_in_the_uk(detect, pad):
    events = detect(pad(gen.caller_id("bell202", **FIELDS)), country="uk", standard="bell202")
    assert [e.standard for e in events] == ["bell202"]


def test_a_caller_id_after_an_off_hook_spell_is_dated_the_same_however_often_fsk_skipped():
    """Off-hook, the FSK receiver is only told how much audio passed (skip); after the
    first skip the next ones only count. Back on-hook, a message is dated where it is."""
    from firmware.dsp.fsk import FskReceiver

    message = gen.caller_id("v23", number="01632960123")
    signal = gen.concat(gen.silence(200), message, gen.silence(300))
    found = []
    for skips in ([8000 * 30], [800] * 300, [4000, 0, 4000, 216000, 16000]):
        fsk = FskReceiver("v23")
        fsk.feed(gen.white_noise(4000, -60, seed=1))
        for n in skips:
            assert fsk.skip(n) == []
        got = [r for start in range(0, len(signal), 800) for r in fsk.feed(signal[start : start + 800])]
        found.append([(kind, start, end) for kind, _value, start, end in got + fsk.flush()])
    assert found[0] and found[0][0][0] == "message"
    assert found[1] == found[0] and found[2] == found[0]
