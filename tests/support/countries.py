"""A made-up country: proof that a new country is one entry in the table."""

from telephony.countries import Country, NumberFormat, Tone

ZEDLAND = Country(
    code="zz",
    name="Zedland",
    cid_standards=("bell202", "dtmf"),
    ring_cadence_ms=(1000, 3000),
    ring_hz=20,
    ring_timeout_ms=4500,
    tones={
        "dial": Tone(425, 0),
        "busy": Tone(425, 0, (500, 500, 0, 0)),
        "unobtainable": Tone(425, 0, (200, 200, 0, 0)),
        "ringback": Tone(425, 0, (1000, 3000, 0, 0)),
    },
    tone_detection=(("dial", ((425, 0, 800, 0),)), ("busy", ((425, 0, 400, 600), (0, 0, 400, 600)))),
    clear_tone="busy",
    voice="en-gb",
    numbers=NumberFormat(country_code="999", international_prefix="00", trunk_prefix="0"),
)
