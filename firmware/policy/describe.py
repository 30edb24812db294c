"""A line's recording policy in plain words: which of its calls are recorded.

The staff notice and the *My line* page (``web/documents.py``) tell the people on a line
what the recorder does with their calls, from the settings it follows
(:func:`firmware.policy.rules.decide`, whose checks these words take in its order): "by the
rules" alone told a staff member nothing of which calls. :func:`line_words` says the line's
mode, and for a line recorded by the rules each rule set: the directions, the number lists
(by name and how many entries each holds, never a number: an entry may be a whole number,
a customer's or a helpline's), the business hours and holidays, the sample, the minimum
length; for a line recorded on request, how to ask (the keypad code, the record button);
and how to pause a recording for card details (:func:`pause_words`). Each is said only
where it is set, so the words change when a setting does (and the staff notice gets a new
version: docs/reports.md).
"""

from ..localtime import day_words
from .pause import button_wired
from .rules import WEEKDAYS, _pct

DAYS = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}


def line_words(policy, line, hat=None):
    """Which calls of ``line`` are recorded, in a phrase for its staff ("every call
    recorded; to pause it while a caller gives card details, key *1 on the handset").

    :param policy: :class:`~firmware.policy.settings.PolicySettings`
    :param hat: the configuration's HAT name: a button it has not got is not offered
    """
    rules = policy.rules
    mode = rules.mode(line)
    if mode == "never":
        return "never recorded"
    if mode == "always":
        said = "every call recorded, those you take and those you make"
    elif mode == "on_demand":
        said = on_demand_words(rules.on_demand, hat)
    else:
        said = "recorded by the rules: " + "; ".join(rules_parts(rules))
    pause = pause_words(policy.pci, hat)
    if pause:
        said += "; to pause it while a caller gives card details, %s" % pause
    return said


def rules_parts(rules):
    """What the rules of a "by_rule" line record, one phrase per rule set, in the order
    :func:`~firmware.policy.rules.decide` checks them (``rules``: a
    :class:`~firmware.policy.settings.RecordingRules`)."""
    parts = [
        {
            ("in", "out"): "calls you take and calls you make",
            ("in",): "only calls you take (incoming), not those you make",
            ("out",): "only calls you make (outgoing), not those you take",
        }[tuple(d for d in ("in", "out") if d in rules.directions)]
    ]
    for action, words in (
        ("exclude", "not calls to or from the numbers on %s"),
        ("include", "only calls to or from the numbers on %s"),
    ):
        lists = [x for x in rules.numbers if x.action == action]
        if lists:
            parts.append(words % lists_words(lists))
    if rules.hours is not None:
        parts.append(hours_words(rules.hours))
    if rules.sample_percent < 100:
        parts.append(
            "of those, only %s %% picked at random" % _pct(rules.sample_percent)
            if rules.sample_percent
            else "of those, none (a sample of 0 %)"
        )
    if rules.min_duration_s:
        parts.append("not a call that talks less than %s s" % _pct(rules.min_duration_s))
    return parts


def lists_words(lists):
    """Number lists by name and size: ``the list “helplines” (2 entries)``, ``the lists
    “a” (1 entry) or “b” (3 entries)``. Never their patterns."""
    named = [
        "\u201c%s\u201d (%d entr%s)" % (x.name, len(x.patterns), "y" if len(x.patterns) == 1 else "ies")
        for x in lists
    ]
    if len(named) == 1:
        return "the list " + named[0]
    return "the lists %s or %s" % (", ".join(named[:-1]), named[-1])


def hours_words(hours):
    """When business hours let a call be recorded: ``only Monday to Friday 09:00-17:30,
    Saturday 09:00-12:00 (Europe/London time), not on Fri 25 Dec 2026 or Sat 26 Dec 2026``; days
    with the same windows one after another are said together."""
    groups = []  # [[first day, last day, windows]]
    for day in WEEKDAYS:
        windows = tuple(hours.days.get(day, ()))
        if (
            windows
            and groups
            and groups[-1][2] == windows
            and WEEKDAYS.index(groups[-1][1]) + 1 == WEEKDAYS.index(day)
        ):
            groups[-1][1] = day
        elif windows:
            groups.append([day, day, windows])
    if not groups:
        return "at no time: no business hours are set"
    said = []
    for first, last, windows in groups:
        span = WEEKDAYS.index(last) - WEEKDAYS.index(first)
        days = (
            DAYS[first] if not span else "%s %s %s" % (DAYS[first], "and" if span == 1 else "to", DAYS[last])
        )
        said.append("%s %s" % (days, " and ".join(windows)))
    text = "only %s (%s time)" % (", ".join(said), hours.timezone)
    if hours.holidays:
        # As the pages write dates (staff read "Fri 25 Dec 2026", not "2026-12-25").
        days = [day_words(d) for d in sorted(hours.holidays)]
        text += ", not on %s" % (days[0] if len(days) == 1 else "%s or %s" % (", ".join(days[:-1]), days[-1]))
    return text


def on_demand_words(on_demand, hat=None):
    """How a line recorded on request is asked, and what the recording then holds
    (``on_demand``: an :class:`~firmware.policy.settings.OnDemand`)."""
    ways = []
    if on_demand.dtmf_code:
        ways.append("key %s on the handset" % on_demand.dtmf_code)
    if on_demand.button and button_wired(hat, "record_button"):
        ways.append("press the line's record button")
    if not ways:
        return "recorded only when asked, but no way to ask is set: nothing is recorded"
    held = (
        "the recording then holds the call from its start (up to %d s back)" % on_demand.lookback_s
        if on_demand.from_start
        else "the recording then begins when asked"
    )
    return "recorded only when asked during the call (%s); %s" % (" or ".join(ways), held)


def pause_words(pci, hat=None):
    """How staff pause the recording for card details (the keypad code, the line's pause
    button, or both), or None when they cannot (``pci``: a
    :class:`~firmware.policy.pause.PciSettings`; ``hat``: the configuration's HAT name)."""
    ways = []
    if pci.pause_code:
        ways.append("key %s on the handset" % pci.pause_code)
    if pci.button and button_wired(hat, "pause_button"):
        ways.append("press the line's pause button")
    return " or ".join(ways) or None
