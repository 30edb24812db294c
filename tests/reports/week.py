"""A simulated week over four lines whose report figures are known in advance.

Monday 2026-03-02 00:00 UTC to Sunday 2026-03-08 24:00. Line 3 is private,
line 4 records by rule (numbers 0800* excluded), lines 1 and 2 record every
call; inbound calls get a beep as the consent notice. The expected figures in
tests/reports/test_week.py were worked out from this list by hand.

The box ends a connected call after ``silence_clear_s`` (60 s by default) with
no sound on the line (``remote_silence``: the far end is taken to have gone),
so a call that talks longer than that has speech in it, as a real one does.
"""

DAY_S = 86_400
START = "2026-03-02T00:00:00Z"
CONFIG = {
    "policy": {
        "rules": {
            "default_mode": "always",
            "lines": [{"line": 3, "mode": "never"}, {"line": 4, "mode": "by_rule"}],
            "numbers": [{"name": "helplines", "action": "exclude", "patterns": ["0800*"]}],
        },
        "consent": {"inbound": "tone", "outbound": "off"},
    }
}


def at(day, hh, mm):
    return day * DAY_S + hh * 3600 + mm * 60


def inbound(line, t, number=None, talk=None, rings=2, absence=None, speech=None):
    call = {"line": line, "at": t, "direction": "in", "rings": rings}
    if speech:
        call["speech"] = speech
    if absence:
        call["caller_id"] = {"absence": absence}
    elif number:
        call["caller_id"] = {"number": number}
    if talk is None:
        call["answer"] = False
    else:
        call["talk"] = talk
    return call


def outbound(line, t, digits, talk):
    return {"line": line, "at": t, "direction": "out", "dial": {"digits": digits}, "talk": talk}


CALLS = [
    # Monday
    inbound(1, at(0, 9, 0), "01632960001", talk=60),
    inbound(2, at(0, 9, 30), "01632960002"),  # missed, called back Tue
    inbound(1, at(0, 11, 0), "01632960003"),  # missed
    inbound(1, at(0, 11, 5), "01632960003"),  # missed again: one entry, 2
    # Tuesday
    outbound(1, at(1, 10, 0), "00441632960002", talk=30),  # the callback (another form)
    inbound(3, at(1, 10, 30), "01632960004", talk=30),  # private line
    outbound(4, at(1, 14, 0), "08001111111", talk=20),  # excluded: helplines
    # Wednesday
    inbound(2, at(2, 9, 15), absence="private"),  # missed, no number
    # 90 s: speech 2 s and 45 s after the answer, so the line is never silent for 60 s.
    inbound(
        2,
        at(2, 9, 45),
        "01632960005",
        talk=90,
        speech=[
            {"at": 2.0, "text": "Good morning, I am calling about my order."},
            {"at": 45.0, "text": "Thank you, that is all I needed."},
        ],
    ),
    # Thursday
    inbound(4, at(3, 9, 10), "01632960009", talk=45),  # line 4, passes the rules
    outbound(3, at(3, 16, 0), "01632960006", talk=15),  # private line
    # Friday
    inbound(2, at(4, 11, 20), "01632960010"),  # missed, rang back Sat
    # Saturday
    inbound(1, at(5, 10, 0), "01632960010", talk=25),  # ...here: not on the list
    # Sunday
    inbound(1, at(6, 23, 30), "01632960011"),  # missed, last of the week
]


def scenario():
    return {"start": START, "country": "uk", "lines": 4, "seed": 3, "calls": CALLS, "config": CONFIG}
