"""Signal generators for the simulator and the tests.

Every function returns mono signed 16-bit samples at 8000 Hz as a numpy
``int16`` array.  The standard signals come from spandsp's own transmitters
(``dtmf_tx``, ``adsi_tx``, ``fsk_tx``, ``tone_gen``), so the receivers are
tested against the reference implementation; numpy is used for noise, level
scaling and the deliberately out-of-spec test signals (twist, frequency
offsets) that spandsp's transmitters cannot make.

Levels are in dBm0: a full-scale sine is +3.14 dBm0, so 0 dBm0 is a sine of
RMS :data:`telephony.levels.DBM0_RMS` (about 16 140).  Durations are in milliseconds.

The simulator composes these into a line's audio; see the module docstring of
:mod:`firmware.dsp.detector` for the sequences (UK SIN 227: polarity reversal,
≥100 ms, alert 88–110 ms, ≥45 ms, FSK, ≥200 ms, ring; US: FSK between the first
and second ring).
"""

import math

import numpy as np

from telephony import spandsp
from telephony.countries import FSK_MODULATIONS
from telephony.countries import country as country_table
from telephony.levels import DBM0_RMS

SAMPLE_RATE = 8000
DTMF_ROWS_HZ = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = "123A456B789C*0#D"

#: Default preambles in bits: (alternating channel seizure, marks).
PREAMBLES = {"etsi": (300, 180), "bellcore": (300, 180), "bt_short": (96, 55)}


def ms_to_samples(ms):
    """Number of samples in ``ms`` milliseconds (rounded)."""
    return int(round(ms * SAMPLE_RATE / 1000.0))


def silence(duration_ms):
    """``duration_ms`` of digital silence."""
    return np.zeros(ms_to_samples(duration_ms), dtype=np.int16)


def level_dbm0(samples):
    """Measure the RMS level of ``samples`` in dBm0 (``-inf`` for silence or no samples)."""
    x = np.asarray(spandsp.as_int16(samples), dtype=np.float64)
    if x.size == 0:
        return float("-inf")
    rms = math.sqrt(float(np.dot(x, x)) / x.size)
    return 20.0 * math.log10(rms / DBM0_RMS) if rms > 0 else float("-inf")


def scale_to_dbm0(samples, level):
    """Return ``samples`` scaled so that their RMS level is ``level`` dBm0 (saturating)."""
    now = level_dbm0(samples)
    if now == float("-inf"):
        return spandsp.as_int16(samples).copy()
    return _to_int16(np.asarray(samples, dtype=np.float64) * 10.0 ** ((level - now) / 20.0))


def white_noise(n, level_dbm0, seed=None):
    """``n`` samples of Gaussian white noise (flat 0–4 kHz) at ``level_dbm0`` RMS.

    ``seed`` makes it repeatable (numpy ``default_rng``).
    """
    rng = np.random.default_rng(seed)
    return _to_int16(rng.normal(0.0, DBM0_RMS * 10.0 ** (level_dbm0 / 20.0), int(n)))


def mix(*signals):
    """Sum int16 signals of any lengths (shorter ones padded with silence), saturating."""
    n = max((len(s) for s in signals), default=0)
    out = np.zeros(n, dtype=np.float64)
    for s in signals:
        out[: len(s)] += s
    return _to_int16(out)


def concat(*signals):
    """Join int16 signals end to end."""
    return np.concatenate([spandsp.as_int16(s) for s in signals]) if signals else silence(0)


def sine(freqs_hz, levels_dbm0, duration_ms, phase=0.0):
    """Sum of sines (numpy synthesis, for test signals): each at its own level in dBm0."""
    n = ms_to_samples(duration_ms)
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n)
    for f, lvl in zip(freqs_hz, levels_dbm0, strict=False):
        out += math.sqrt(2.0) * DBM0_RMS * 10.0 ** (lvl / 20.0) * np.sin(2 * math.pi * f * t + phase)
    return _to_int16(out)


# ------------------------------------------------------------------ DTMF


def dtmf(digits, level_dbm0=-4, on_ms=50, off_ms=50, twist_db=0, freq_offset=(0, 0)):
    """DTMF digits, each ``on_ms`` of tone followed by ``off_ms`` of silence.

    ``level_dbm0`` is the level of each tone (the louder one when there is
    twist).  ``twist_db`` is the low-group level minus the high-group level:
    positive = normal twist (low group louder), negative = reverse twist.
    ``freq_offset`` is the (row, column) frequency error as a fraction, e.g.
    ``(0.015, -0.015)`` for +1.5 % / -1.5 %.  The nominal signal comes from
    spandsp's ``dtmf_tx``; twisted or off-frequency digits are synthesised
    with numpy.  Raises :class:`ValueError` for a character that is not a DTMF
    key.
    """
    digits = str(digits).upper()
    bad = [d for d in digits if d not in DTMF_KEYS]
    if bad:
        raise ValueError("not DTMF keys: %r" % "".join(bad))
    if twist_db == 0 and tuple(freq_offset) == (0, 0) and float(level_dbm0).is_integer():
        return _dtmf_tx(digits, int(level_dbm0), int(on_ms), int(off_ms))
    low = level_dbm0 - max(0.0, -twist_db)
    high = level_dbm0 - max(0.0, twist_db)
    parts = []
    for d in digits:
        i = DTMF_KEYS.index(d)
        f_row = DTMF_ROWS_HZ[i // 4] * (1 + freq_offset[0])
        f_col = DTMF_COLS_HZ[i % 4] * (1 + freq_offset[1])
        parts += [sine((f_row, f_col), (low, high), on_ms), silence(off_ms)]
    return concat(*parts)


def _dtmf_tx(digits, level, on_ms, off_ms):
    sd = spandsp.load()
    tx = sd.owned(sd.lib.dtmf_tx_init(sd.ffi.NULL), "dtmf_tx_free")
    sd.lib.dtmf_tx_set_level(tx, level, 0)
    sd.lib.dtmf_tx_set_timing(tx, on_ms, off_ms)
    out = np.zeros(ms_to_samples((on_ms + off_ms) * len(digits)) + 8, dtype=np.int16)
    done = 0
    # spandsp queues at most 128 digits at a time.
    for start in range(0, len(digits), 100):
        chunk = digits[start : start + 100].encode()
        sd.lib.dtmf_tx_put(tx, chunk, len(chunk))
        while True:
            n = sd.lib.dtmf_tx(tx, sd.int16_ptr(out[done:]), len(out) - done)
            if n <= 0:
                break
            done += n
    return out[:done]


# ------------------------------------------------------------- caller ID


def cid_message(
    standard="v23", number=None, name=None, datetime=None, absence=None, message_waiting=None, sdmf=False
):
    """Build a caller-ID message body (type, length, parameters) without the checksum.

    MDMF (``0x80``) by default, with parameters date/time ``0x01``
    (``"MMDDHHMM"``), number ``0x02``, absence of number ``0x04`` (``'P'``
    private or ``'O'`` unavailable), name ``0x07``.  ``message_waiting`` (True
    or False) makes a message-waiting message instead (MDMF ``0x82`` with a
    visual indicator, or SDMF ``0x06`` for Bell 202 when ``sdmf``).  ``sdmf``
    with Bell 202 makes the single-data-message format ``0x04`` (date/time and
    number, or ``'P'``/``'O'`` in place of the number).
    """
    code = {None: None, "private": b"P", "unavailable": b"O"}[absence]
    if message_waiting is not None:
        if sdmf:
            return bytes([0x06, 3]) + (b"\x42\x42\x42" if message_waiting else b"\x6f\x6f\x6f")
        return bytes([0x82, 3, 0x0B, 1, 0xFF if message_waiting else 0x00])
    if sdmf:
        if standard != "bell202":
            raise ValueError("SDMF is a Bell 202 format")
        body = (datetime or "01010000").encode() + (code or (number or "").encode())
        return bytes([0x04, len(body)]) + body
    body = b""
    if datetime:
        body += _param(0x01, datetime.encode())
    if number:
        body += _param(0x02, number.encode())
    if code:
        body += _param(0x04, code)
    if name:
        body += _param(0x07, name.encode("latin-1"))
    elif code:
        body += _param(0x08, code)
    return bytes([0x80, len(body)]) + body


def _param(kind, value):
    return bytes([kind, len(value)]) + value


def checksum(message):
    """The caller-ID checksum byte: two's complement of the mod-256 sum of ``message``."""
    return (-sum(message)) & 0xFF


def caller_id(
    standard,
    number=None,
    name=None,
    datetime=None,
    absence=None,
    level_dbm0=-13.5,
    message_waiting=None,
    sdmf=False,
    preamble=None,
    tone_offset=0.0,
    bitrate_offset=0.0,
    gap_bits=0,
    bad_checksum=False,
    message=None,
    dtmf_format="AC",
    dtmf_on_ms=60,
    dtmf_off_ms=60,
):
    """A caller-ID message on the line, as audio.

    ``standard``: ``"v23"`` (UK/ETSI FSK), ``"bell202"`` (North America) or
    ``"dtmf"``.  Fields as in :func:`cid_message`; ``message`` gives raw bytes
    (type, length, parameters) instead, without checksum.  FSK options:
    ``preamble`` = (alternating bits, mark bits), default ETSI (300, 180) for
    V.23 and Bellcore (240, 180) for Bell 202, ``"bt_short"`` for BT's shortest
    (96, 55); ``tone_offset`` and ``bitrate_offset`` as fractions (0.015 =
    +1.5 %); ``gap_bits`` extra mark bits between characters; ``bad_checksum``
    sends a wrong checksum byte.  With no offsets and no gaps the audio comes
    from spandsp's ``adsi_tx``, otherwise from ``fsk_tx`` with the offset
    specification.  DTMF options: ``dtmf_format`` (see :func:`dtmf_cid_string`;
    default ``A<number>C``, absence ``B10C``/``B00C``), tone timing in ms.
    ``level_dbm0`` is the RMS level of the FSK signal or of each DTMF tone.
    """
    if standard == "dtmf":
        text = dtmf_cid_string(number=number, absence=absence, fmt=dtmf_format)
        return dtmf(text, level_dbm0=level_dbm0, on_ms=dtmf_on_ms, off_ms=dtmf_off_ms)
    if standard not in FSK_MODULATIONS:
        raise ValueError("unknown caller-ID standard %r (v23, bell202, dtmf)" % (standard,))
    if message is None:
        message = cid_message(standard, number, name, datetime, absence, message_waiting, sdmf)
    message = bytes(message)
    if isinstance(preamble, str):
        preamble = PREAMBLES[preamble]
    if preamble is None:
        preamble = PREAMBLES[FSK_MODULATIONS[standard].preamble]
    framed = message + bytes([checksum(message) ^ (0x01 if bad_checksum else 0)])
    if tone_offset == 0 and bitrate_offset == 0 and gap_bits == 0 and not bad_checksum:
        audio = _adsi_tx(standard, message, preamble)
    else:
        bits = fsk_bits(framed, preamble, gap_bits)
        audio = fsk_modulate(standard, bits, tone_offset, bitrate_offset)
    return scale_to_dbm0(audio, level_dbm0)


def fsk_bits(framed, preamble, gap_bits=0, postamble=5):
    """The bit sequence of an FSK caller-ID burst (numpy uint8 array).

    ``preamble`` = (alternating 0/1 bits, mark bits); each byte of ``framed``
    is sent start bit, 8 data bits LSB first, stop bit, then ``gap_bits``
    marks; ``postamble`` marks end the burst.
    """
    seizure, marks = preamble
    bits = [i & 1 for i in range(seizure)] + [1] * marks
    for byte in framed:
        bits += [0] + [(byte >> i) & 1 for i in range(8)] + [1] + [1] * gap_bits
    bits += [1] * postamble
    return np.array(bits, dtype=np.uint8)


def fsk_modulate(standard, bits, tone_offset=0.0, bitrate_offset=0.0):
    """Modulate ``bits`` with spandsp's ``fsk_tx``, optionally off frequency / off rate."""
    sd = spandsp.load()
    ffi, lib = sd.ffi, sd.lib
    mod = FSK_MODULATIONS[standard]
    space_hz, mark_hz, rate = mod.space_hz, mod.mark_hz, mod.bit_rate
    spec = ffi.new("fsk_spec_t *")
    spec.name = ffi.NULL
    spec.freq_zero = int(round(space_hz * (1 + tone_offset)))
    spec.freq_one = int(round(mark_hz * (1 + tone_offset)))
    spec.tx_level = -14
    spec.min_level = -30
    spec.baud_rate = int(round(rate * 100 * (1 + bitrate_offset)))
    pending = list(int(b) for b in bits)[::-1]

    @ffi.callback("int(void *)")
    def get_bit(_user):
        return pending.pop() if pending else 1

    tx = sd.owned(lib.fsk_tx_init(ffi.NULL, spec, get_bit, ffi.NULL), "fsk_tx_free")
    n = int(math.ceil(len(bits) * SAMPLE_RATE / (rate * (1 + bitrate_offset)))) + 1
    out = np.zeros(n, dtype=np.int16)
    lib.fsk_tx(tx, sd.int16_ptr(out), n)
    return out


def _adsi_tx(standard, message, preamble):
    sd = spandsp.load()
    ffi, lib = sd.ffi, sd.lib
    adsi_standard = getattr(spandsp, FSK_MODULATIONS[standard].spandsp_adsi)
    tx = sd.owned(lib.adsi_tx_init(ffi.NULL, adsi_standard), "adsi_tx_free")
    lib.adsi_tx_set_preamble(tx, preamble[0], preamble[1], 5, 1)
    lib.adsi_tx_put_message(tx, ffi.from_buffer(message), len(message))
    chunks = []
    while True:
        buf = np.zeros(4000, dtype=np.int16)
        n = lib.adsi_tx(tx, sd.int16_ptr(buf), len(buf))
        if n <= 0:
            break
        chunks.append(buf[:n])
        if n < len(buf):
            break
    return concat(*chunks)


def dtmf_cid_string(number=None, absence=None, fmt="AC"):
    """The DTMF digits of a DTMF caller-ID message.

    ``fmt`` names the start and end codes around the number: ``"AC"``
    (``A<number>C``), ``"A#"`` (``A<number>#``), ``"DC"`` / ``"D#"``
    (``D<number>C`` / ``D<number>#``), ``"#"`` (``<number>#``).  With
    ``absence`` (``"private"``/``"unavailable"``) and no number the absence
    code is sent instead: ``B10C``/``B00C`` for C-terminated formats,
    ``D01#``/``D00#`` otherwise.  A ``fmt`` with digits in it is a whole
    message and is sent verbatim (e.g. ``"B00C"``, ``"01#"``).
    """
    if any(ch.isdigit() for ch in fmt):
        return fmt
    end = fmt[-1]
    if number is None:
        code = {"private": "10", "unavailable": "00"}[absence]
        if end == "C":
            return "B" + code + "C"
        return "D" + {"10": "01", "00": "00"}[code] + "#"
    start = fmt[:-1]
    return start + number + end


# ---------------------------------------------------------- alert and tones


def tone(f1_hz, f2_hz, level_dbm0, cadence_ms=(0, 0, 0, 0), duration_ms=1000):
    """Tones from spandsp's ``tone_gen``: one or two frequencies, each at ``level_dbm0``.

    ``cadence_ms`` = (on, off, on, off); all zero means continuous.  The result
    is exactly ``duration_ms`` long.
    """
    sd = spandsp.load()
    ffi, lib = sd.ffi, sd.lib
    n = ms_to_samples(duration_ms)
    whole = int(math.floor(level_dbm0))
    on1, off1, on2, off2 = cadence_ms
    if on1 == 0:
        on1 = duration_ms + 10
    desc = ffi.gc(
        lib.tone_gen_descriptor_init(
            ffi.NULL, int(f1_hz), whole, int(f2_hz), whole, int(on1), int(off1), int(on2), int(off2), 1
        ),
        lib.tone_gen_descriptor_free,
    )
    gen = sd.owned(lib.tone_gen_init(ffi.NULL, desc), "tone_gen_free")
    out = np.zeros(n, dtype=np.int16)
    done = lib.tone_gen(gen, sd.int16_ptr(out), n)
    out[done:] = 0
    if level_dbm0 != whole:
        out = _to_int16(out * 10.0 ** ((level_dbm0 - whole) / 20.0))
    return out


def alert_tone(level_dbm0=-13, duration_ms=100):
    """The dual-tone alert signal 2130 + 2750 Hz (BT SIN 227, ETSI), each tone at ``level_dbm0``."""
    return tone(2130, 2750, level_dbm0, (0, 0, 0, 0), duration_ms)


def call_progress(name, country="uk", duration_ms=4000, level_dbm0=-13):
    """A call-progress tone of ``country`` (``uk``/``etsi``/``us``), ``duration_ms`` long.

    Names: ``dial``, ``busy``, ``congestion`` (US ``reorder``),
    ``unobtainable`` (in the US the reorder tone), ``ringback``.  Each tone
    is at ``level_dbm0``.  Raises :class:`ValueError` for an unknown country
    or tone.
    """
    entry = country_table(country).tone(name)  # ValueError for an unknown country or tone
    f1, f2, cadence = entry.f1_hz, entry.f2_hz, entry.cadence_ms
    return tone(f1, f2, level_dbm0, cadence, duration_ms)


def _to_int16(x):
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)
