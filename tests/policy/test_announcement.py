"""Announcement uploads: checked whole, converted to what the line plays, or refused saying why.

Issue 6 acceptance: bad uploads (not a WAV, too long, too quiet, huge, a WAV
with a lying header) are rejected with a message and change nothing.
"""

import errno
import logging
import math
import os
import struct

import numpy as np
import pytest

import firmware.policy.announcement as announcement
from firmware.errors import AudioFormatError
from firmware.policy.announcement import (
    AnnouncementError,
    Announcements,
    active_level_dbm0,
    store_announcement,
    validate_announcement_wav,
    wav_bytes,
)
from firmware.policy.settings import Announcement

RATE = 8000


def speechlike(seconds=3.0, level_dbm0=-18, rate=RATE):
    """Bursts of a few tones, like syllables: an active level the check can measure."""
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * math.pi * f * t) for f in (300, 700, 1100, 2300))
    x *= np.sin(2 * math.pi * 3 * t) > 0  # 3 syllables a second
    x *= 16090 * 10 ** (level_dbm0 / 20) / np.sqrt(np.mean(x[x != 0] ** 2))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def wav(samples, rate=RATE, channels=1, bits=16, tag=1, extra_chunks=b""):
    x = np.asarray(samples)
    if bits == 16:
        body = x.astype("<i2").tobytes()
    elif bits == 8:
        body = (x.astype(np.int32) // 256 + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        v = x.astype(np.int32) * 256
        body = np.stack([v & 255, (v >> 8) & 255, (v >> 16) & 255], axis=-1).astype(np.uint8).tobytes()
    else:
        body = (x.astype(np.float32) / 32768).astype("<f4").tobytes()
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    chunks = (
        b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + extra_chunks
        + b"data"
        + struct.pack("<I", len(body))
        + body
    )
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def test_a_plain_announcement_is_taken_as_it_is():
    x = speechlike()
    out = validate_announcement_wav(wav(x))
    assert np.array_equal(out, x)
    assert active_level_dbm0(out) == pytest.approx(-18, abs=0.5)


@pytest.mark.parametrize(
    "rate, channels, bits, tag",
    [(16000, 1, 16, 1), (44100, 2, 16, 1), (48000, 2, 24, 1), (22050, 1, 8, 1), (8000, 2, 32, 3)],
)
def test_other_pcm_formats_are_converted_to_mono_8khz(rate, channels, bits, tag):
    mono = speechlike(rate=rate)
    x = np.repeat(mono[:, None], channels, axis=1).reshape(-1)
    out = validate_announcement_wav(wav(x, rate, channels, bits, tag))
    assert len(out) == pytest.approx(3.0 * RATE, abs=2)
    assert active_level_dbm0(out) == pytest.approx(-18, abs=1.5)


def test_unknown_chunks_are_skipped():
    x = speechlike()
    info = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\0"  # odd size, padded
    assert np.array_equal(validate_announcement_wav(wav(x, extra_chunks=info)), x)


def lying_riff(data):
    return data[:4] + struct.pack("<I", struct.unpack("<I", data[4:8])[0] + 1000) + data[8:]


def lying_data(data):
    i = data.index(b"data")
    size = struct.unpack("<I", data[i + 4 : i + 8])[0]
    return data[: i + 4] + struct.pack("<I", size * 2) + data[i + 8 :]


BAD = {
    "empty": (lambda: b"", "the file is empty (0 bytes): save the announcement as WAV again and choose that"),
    "not a WAV": (lambda: b"ID3\x03\x00" + bytes(5000), "not a WAV file"),
    "text": (lambda: b"hello, this is an announcement", "not a WAV file"),
    "too long": (lambda: wav(speechlike(31.0)), "lasts 31.0 s; keep it to at most 30 s"),
    "too short": (lambda: wav(speechlike(0.1)), "lasts 0.1 s: too short to tell a caller anything"),
    "too quiet": (lambda: wav(speechlike(level_dbm0=-40)), "too quiet (-40."),
    # Not "(silent dBm0; ...": silence has no level to give in dBm0.
    "silent": (lambda: wav(np.zeros(8000, np.int16)), "too quiet (it is silent; at least -35 dBm0 is needed"),
    "huge": (lambda: wav(speechlike(28.0, rate=48000)) + bytes(3_000_000), "at most 5 MB"),
    "lying length": (lambda: lying_riff(wav(speechlike())), "the WAV header says the file is"),
    "lying data size": (lambda: lying_data(wav(speechlike())), "'data' chunk holds"),
    "cut short": (lambda: wav(speechlike())[:-1001], "the WAV header says the file is"),
    "ADPCM": (lambda: wav(speechlike(), tag=2), "ADPCM audio; save it as uncompressed PCM"),
    "A-law": (lambda: wav(speechlike(), tag=6), "A-law audio"),
    "odd rate": (lambda: wav(speechlike(), rate=12345), "a sample rate of 12345 Hz is not supported"),
    "no audio": (lambda: wav(np.zeros(0, np.int16)), "holds no audio"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_uploads_are_refused_with_a_message_and_change_nothing(tmp_path, case):
    make, message = BAD[case]
    data = make()
    with pytest.raises(AudioFormatError) as err:
        validate_announcement_wav(data)
    assert message in str(err.value)
    with pytest.raises(AudioFormatError):
        store_announcement(tmp_path, "welcome.wav", data)
    assert not os.path.exists(tmp_path / "announcements" / "welcome.wav")


def test_a_refused_upload_leaves_the_previous_one(tmp_path):
    good = speechlike()
    store_announcement(tmp_path, "welcome.wav", wav(good))
    before = (tmp_path / "announcements" / "welcome.wav").read_bytes()
    with pytest.raises(AudioFormatError):
        store_announcement(tmp_path, "welcome.wav", wav(speechlike(level_dbm0=-45)))
    assert (tmp_path / "announcements" / "welcome.wav").read_bytes() == before
    assert oct(os.stat(tmp_path / "announcements" / "welcome.wav").st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("name", ["../x.wav", "x.mp3", "tts-1.wav", "", ".wav"])
def test_upload_names_are_plain(tmp_path, name):
    with pytest.raises(ValueError):
        store_announcement(tmp_path, name, wav(speechlike()))


def test_the_default_is_spoken_once_and_cached_in_the_data_dir(tmp_path):
    first = Announcements(tmp_path).samples(Announcement())
    (name,) = os.listdir(tmp_path / "announcements")
    assert name.startswith("tts-") and name.endswith(".wav")
    assert active_level_dbm0(first) == pytest.approx(-16, abs=0.5)
    again = Announcements(tmp_path, program="no-such-espeak").samples(Announcement())
    assert np.array_equal(first, again)  # from the cache: espeak-ng not needed


def test_a_cache_not_written_on_a_full_card_still_gives_the_notice(tmp_path, monkeypatch, caplog):
    """The spoken default is made in memory, then cached: a cache write that failed (a full
    card) failed the whole announcement, so the caller heard no notice. The samples made
    are played; the failure is logged (the card-full alarms say the rest)."""
    made = Announcements(tmp_path / "a").samples(Announcement())

    def card_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(announcement, "atomic_write", card_full)
    with caplog.at_level(logging.WARNING, logger=announcement.__name__):
        samples = Announcements(tmp_path / "b").samples(Announcement())
    assert np.array_equal(samples, made)
    assert os.listdir(tmp_path / "b" / "announcements") == []  # nothing cached
    assert "cache" in caplog.text and "No space left on device" in caplog.text


def test_missing_or_damaged_files_say_which(tmp_path):
    with pytest.raises(AnnouncementError, match="welcome.wav cannot be read"):
        Announcements(tmp_path).samples(Announcement(file="welcome.wav"))
    os.makedirs(tmp_path / "announcements")
    (tmp_path / "announcements" / "welcome.wav").write_bytes(b"RIFF....junk")
    with pytest.raises(AnnouncementError, match="welcome.wav is not usable: "):
        Announcements(tmp_path).samples(Announcement(file="welcome.wav"))
    with pytest.raises(AnnouncementError, match="is not installed"):
        Announcements(tmp_path / "b", program="no-such-espeak").samples(Announcement())


def test_wav_bytes_round_trip():
    x = speechlike()
    assert np.array_equal(validate_announcement_wav(wav_bytes(x)), x)


def test_espeak_not_started_is_a_reason_the_recorder_starts_with(tmp_path, monkeypatch):
    """espeak-ng that cannot be started (no memory to fork it) raised an OSError out of
    samples(): the pages said it only because the web UI caught it itself, and the
    recorder, which makes the announcement as it applies its settings, did not start at
    all (nor raise announcement_unplayable). It is a reason like the others, for both."""
    from firmware.policy.consent import ConsentSettings, make_notices

    def no_memory(*args, **kwargs):
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(announcement.subprocess, "run", no_memory)
    with pytest.raises(AnnouncementError, match="cannot be made: Cannot allocate memory"):
        Announcements(tmp_path / "a").samples(Announcement())
    found = []
    notices = make_notices(None, None, tmp_path / "b", "uk", ConsentSettings(inbound="announcement"))
    notices.on_announcement = found.append
    assert "Cannot allocate memory" in notices.announcement_problem
    notices.apply(notices.settings)  # a change of configuration: found again, and told
    assert found == [notices.announcement_problem]
