import struct
import subprocess
import wave

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.errors import AudioFormatError, ConfigError
from firmware.recording import codec, ogg, quality
from firmware.recording.codec import Encoder, decode

RATE = 8000
PROFILES = ("voice", "high", "alaw", "pcm")
CRYPTO_OVERHEAD_PER_S = 4 + 16  # length field and tag of one chunk per second


def tone(n, freq=440.0, amp=8000):
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / RATE)).astype(np.int16)


def encode_chunked(samples, profile, chunk=None):
    """Encode with a flush every ``chunk`` samples; returns (bytes, flush offsets, encoder)."""
    enc = Encoder(profile, RATE)
    chunk = chunk or enc.frame_samples * (RATE // enc.frame_samples)
    out, flushes = bytearray(), []
    for start in range(0, len(samples), chunk):
        out += enc.encode(samples[start : start + chunk])
        out += enc.flush()
        flushes.append((len(out), start + min(chunk, len(samples) - start)))
    out += enc.finish()
    return bytes(out), flushes, enc


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("n", [0, 1, 479, 480, 481, 8000, 12345])
def test_duration_is_exact(profile, n):
    data, _, enc = encode_chunked(tone(n), profile)
    assert enc.duration_samples == n
    assert len(decode(data, profile)) == n


@pytest.mark.parametrize("profile", ["pcm", "alaw"])
def test_wav_profiles_round_trip(profile):
    x = tone(8000)
    y = decode(encode_chunked(x, profile)[0], profile)
    if profile == "pcm":
        assert np.array_equal(x, y)
    else:  # A-law: ~38 dB SNR on a loud tone
        snr = 10 * np.log10(np.sum(x.astype(float) ** 2) / np.sum((x - y.astype(float)) ** 2))
        assert snr > 30


def test_opus_round_trip_is_aligned_with_the_input():
    x = np.random.default_rng(1).normal(0, 3000, 3 * RATE).astype(np.int16)
    y = decode(encode_chunked(x, "high")[0], "high")
    corr = {lag: np.corrcoef(x[400:-400], np.roll(y, lag)[400:-400])[0, 1] for lag in range(-4, 5)}
    assert max(corr, key=corr.get) == 0 and corr[0] > 0.9  # the pre-skip was applied exactly


@pytest.mark.parametrize("profile", PROFILES)
def test_every_flushed_prefix_decodes_to_the_start_of_the_whole(profile, speech):
    x = speech[0][1]
    data, flushes, enc = encode_chunked(x, profile, chunk=enc_chunk(profile))
    whole = decode(data, profile)
    lookahead = 52 if profile in ("voice", "high") else 0  # libopus at 8 kHz: 6.5 ms
    for end, fed in flushes:
        prefix = decode(data[:end], profile)
        encoded = fed - fed % enc.frame_samples
        assert len(prefix) == max(0, encoded - lookahead)
        assert np.array_equal(prefix, whole[: len(prefix)])


def _packets(data):
    out = []
    for *_, parts, _continues in ogg.read_pages(data):
        out += parts
    return out[2:]  # after OpusHead and OpusTags


@pytest.mark.parametrize("pieces", [[1], [160], [959, 1, 960], [7], [2000, 13, 160]])
def test_the_packets_do_not_depend_on_how_the_audio_arrives(speech, pieces):
    """The encoder fills its frame in place across pieces (and takes whole frames
    straight from a long piece): any split of the same audio gives the same packets."""
    x = speech[0][1][: 3 * RATE]
    whole = Encoder("voice")
    expected = _packets(whole.encode(x) + whole.finish())
    enc, out, start, i = Encoder("voice"), bytearray(), 0, 0
    while start < len(x):
        n = pieces[i % len(pieces)]
        out += enc.encode(x[start : start + n])
        assert enc.buffered_samples == (start + len(x[start : start + n])) % enc.frame_samples
        start, i = start + n, i + 1
    out += enc.finish()
    assert _packets(bytes(out)) == expected


def enc_chunk(profile):
    return Encoder(profile).frame_samples * 16  # 960 ms for voice, 320 ms for high


def test_prefix_cut_at_a_flush_is_valid_ogg_with_the_right_granules():
    x = tone(5 * RATE)
    data, flushes, enc = encode_chunked(x, "voice", chunk=7680)
    pages = list(ogg.read_pages(data))
    assert pages[0][0] & ogg.BOS and not pages[1][0] & ogg.BOS
    assert pages[-1][0] & ogg.EOS and not any(p[0] & ogg.EOS for p in pages[:-1])
    pre_skip = struct.unpack_from("<H", pages[0][4][0], 10)[0]
    assert pre_skip == 312
    assert pages[-1][1] - pre_skip == len(x) * 6  # the final granule trims the padding
    granules = [p[1] for p in pages[2:]]
    assert granules == sorted(granules)
    for end, fed in flushes[:-1]:
        last = list(ogg.read_pages(data[:end]))[-1]
        assert last[1] == fed * 6  # 48 kHz units, every chunk whole frames


def test_opusinfo_accepts_stream_and_prefix(tmp_path):
    data, flushes, _ = encode_chunked(tone(3 * RATE), "voice", chunk=7680)
    for name, blob, expect in (
        ("whole.ogg", data, "0m:03.000s"),
        ("prefix.ogg", data[: flushes[1][0]], "0m:01.913s"),
    ):
        path = tmp_path / name
        path.write_bytes(blob)
        out = subprocess.run(["opusinfo", str(path)], capture_output=True, text=True)
        assert "Playback length: " + expect in out.stdout, out.stdout + out.stderr
        warnings = [
            line
            for line in (out.stdout + out.stderr).splitlines()
            if "WARNING" in line and "EOS not set" not in line
        ]  # normal for a prefix
        assert not warnings


def test_voice_quality_holds_on_every_voice(speech):
    """A guard against regressions of the voice profile's quality.

    The product's target, PESQ >= 3.0 for the worst voice, is measured and
    reported by ``make bench`` (``codec.voice.pesq_worst`` beside its target).
    Since the 0 dBm0 reference was corrected (16090 -> 16140, the A-law value
    spandsp's generators use) the worst voice scores 2.992: within PESQ's
    own noise of the target but under it, so it is reported there as a miss,
    not hidden by this test. Here: no voice under 2.95, the mean at least 3.3.
    """
    scores = {}
    for name, x in speech:
        y = decode(encode_chunked(x, "voice", chunk=7680)[0], "voice")
        scores[name] = quality.pesq_nb(x, y)
    assert min(scores.values()) >= 2.95, scores
    assert np.mean(list(scores.values())) >= 3.3, scores


def test_high_is_near_transparent(speech):
    name, x = speech[1]
    y = decode(encode_chunked(x, "high")[0], "high")
    assert quality.pesq_nb(x, y) >= 4.0


def test_voice_stores_250_hours_per_gb_with_all_overhead(speech):
    x = np.concatenate([s for _, s in speech] * 2)
    data, flushes, _ = encode_chunked(x, "voice", chunk=7680)
    seconds = len(x) / RATE
    stored = len(data) + len(flushes) * CRYPTO_OVERHEAD_PER_S + 300  # + file header
    assert quality.hours_per_gb(stored / seconds * 3600) >= 250


def test_mime_types_and_extensions():
    assert codec.mime_type("voice") == 'audio/ogg; codecs="opus"'
    assert codec.file_extension("high") == ".ogg"
    assert codec.mime_type("alaw") == codec.mime_type("pcm") == "audio/wav"
    assert codec.file_extension("pcm") == ".wav"


def test_unknown_profile_and_rate_are_config_errors():
    with pytest.raises(ConfigError, match="unknown recording profile"):
        Encoder("mp3")
    with pytest.raises(ConfigError, match="11025"):
        Encoder("voice", 11025)


def test_encode_rejects_wrong_input_and_use_after_finish():
    enc = Encoder("pcm")
    with pytest.raises(ValueError):
        enc.encode(np.zeros(10, np.float32))
    enc.finish()
    with pytest.raises(ValueError):
        enc.encode(np.zeros(10, np.int16))


def test_decode_rejects_other_data():
    with pytest.raises(AudioFormatError):
        decode(b"not ogg at all, not even close", "voice")
    with pytest.raises(AudioFormatError):
        decode(b"RIFF....AVI LIST", "pcm")


def test_corrupt_ogg_page_is_reported():
    data = bytearray(encode_chunked(tone(RATE), "voice")[0])
    data[-5] ^= 0x10
    with pytest.raises(AudioFormatError, match="checksum"):
        decode(bytes(data), "voice")


def test_finalized_wav_has_exact_sizes(tmp_path):
    x = tone(4321)
    data = encode_chunked(x, "alaw")[0]
    path = tmp_path / "x.wav"
    path.write_bytes(codec.finalize(data[:1000], "alaw"))  # a partial stream too
    raw = path.read_bytes()
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    assert len(decode(raw, "alaw")) == 1000 - 46
    odd = codec.finalize(data[:1001], "alaw")  # an odd data chunk gets its pad byte
    assert len(odd) % 2 == 0 and struct.unpack_from("<I", odd, 4)[0] == len(odd) - 8
    assert struct.unpack_from("<I", odd, 42)[0] == 1001 - 46
    pcm = tmp_path / "p.wav"
    pcm.write_bytes(codec.finalize(encode_chunked(x, "pcm")[0], "pcm"))
    with wave.open(str(pcm)) as w:
        assert (w.getnframes(), w.getframerate(), w.getsampwidth()) == (4321, RATE, 2)


def test_alaw_matches_g711():
    assert codec.alaw_encode(np.array([0, -1, 32767, -32768], np.int16)) == bytes([0xD5, 0x55, 0xAA, 0x2A])
    every = np.arange(256, dtype=np.uint8).tobytes()
    assert codec.alaw_encode(codec.alaw_decode(every)) == every


def _crc_bitwise(data):
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300))
def test_ogg_crc_matches_the_bitwise_definition(data):
    assert ogg.crc32(data) == _crc_bitwise(data)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("piece", [1, 7, 333, 4096])
def test_a_stream_given_in_pieces_decodes_as_the_whole(profile, piece):
    """:class:`codec.StreamDecoder` (a subject access bundle's recording, a chunk at a time)
    gives what :func:`decode` gives, however the stream is cut; counting alone gives its span."""
    data, _, _ = encode_chunked(tone(12345), profile)
    data = data[:-3]  # a torn end, as a crash leaves it
    whole = decode(data, profile)
    decoder, counter = codec.StreamDecoder(profile), codec.StreamDecoder(profile, count_only=True)
    parts = []
    for at in range(0, len(data), piece):
        parts += decoder.feed(data[at : at + piece])
        assert counter.feed(data[at : at + piece]) == []
    parts += decoder.finish() + counter.finish()
    first, n = decoder.span()
    assert np.array_equal(np.concatenate(parts)[first : first + n], whole)
    assert counter.span() == (first, n) and counter.rate == decoder.rate == RATE
