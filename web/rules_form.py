"""The recording-rules form: between :class:`RecordingRules` and the page's fields.

Fields: ``default_mode``; ``line-N-mode`` per line; ``direction`` (checkboxes
"in", "out"); ``hours_on`` ("on" to limit "by_rule" lines to business hours),
``timezone``, ``hours-mon`` .. ``hours-sun`` ("09:00-12:30, 13:30-17:30";
empty: closed), ``holidays`` (dates, one per line or comma-separated);
``numbers-N-name|action|patterns`` (patterns comma-separated; a row with no
name is left out); ``min_duration_s``, ``sample_percent``; ``on_demand-dtmf_code``
(empty: off), ``on_demand-button``, ``on_demand-from_start`` ("on"),
``on_demand-lookback_s``.

Validation is the settings model's (:meth:`PolicySettings.from_dict`, so a
DTMF code clashing with the PCI codes is caught too); its dotted field paths
are turned back into form field names.
"""

import re

from firmware.errors import ConfigError
from firmware.policy.settings import WEEKDAYS, PolicySettings
from firmware.storage.fieldseal import is_sealed

from .security import row_index

BLANK_ROWS = 2
_LINE = re.compile(r"^policy\.rules\.lines\[(\d+)\]")
_NUMBERS = re.compile(r"^policy\.rules\.numbers\[(\d+)\]\.(name|action|patterns)")
_HOURS_DAY = re.compile(r"^policy\.rules\.hours\.days\.(\w+)")
_SPLIT = re.compile(r"[,;\n]+")


def form_values(rules, n_lines):
    """The form fields for ``rules`` (a :class:`RecordingRules`) on ``n_lines`` lines."""
    values = {
        "default_mode": rules.default_mode,
        "direction": list(rules.directions),
        "min_duration_s": _num(rules.min_duration_s),
        "sample_percent": _num(rules.sample_percent),
        "on_demand-dtmf_code": rules.on_demand.dtmf_code or "",
        "on_demand-button": "on" if rules.on_demand.button else "",
        "on_demand-from_start": "on" if rules.on_demand.from_start else "",
        "on_demand-lookback_s": str(rules.on_demand.lookback_s),
    }
    for n in range(1, n_lines + 1):
        values["line-%d-mode" % n] = rules.mode(n)
    hours = rules.hours
    values["hours_on"] = "on" if hours is not None else ""
    values["timezone"] = hours.timezone if hours is not None else "Europe/London"
    for day in WEEKDAYS:
        values["hours-" + day] = ", ".join(hours.days.get(day, ())) if hours else ""
    values["holidays"] = "\n".join(hours.holidays) if hours else ""
    for i, item in enumerate(rules.numbers):
        values["numbers-%d-name" % i] = item.name
        values["numbers-%d-action" % i] = item.action
        values["numbers-%d-patterns" % i] = ", ".join(item.patterns)
    return values


def number_rows(values):
    return _count(values) + BLANK_ROWS


def _num(value):
    return ("%d" % value) if float(value).is_integer() else ("%g" % value)


def parse_rules_form(form, n_lines, policy):
    """``(PolicySettings or None, {field: message})``: ``policy`` with the form's rules."""
    errors = {}
    get = lambda k: (form.get(k) or "").strip()  # noqa: E731

    def number(field, integer=False):
        text = get(field)
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            errors[field] = "Enter a %snumber." % ("whole " if integer else "")
            return 0
        return int(value) if not integer and value.is_integer() else value

    rules = {
        "default_mode": get("default_mode"),
        "lines": [{"line": n, "mode": get("line-%d-mode" % n)} for n in range(1, n_lines + 1)],
        "directions": [d for d in ("in", "out") if d in form.getlist("direction")],
        "min_duration_s": number("min_duration_s"),
        "sample_percent": number("sample_percent"),
        "on_demand": {
            "dtmf_code": get("on_demand-dtmf_code") or None,
            "button": get("on_demand-button") == "on",
            "from_start": get("on_demand-from_start") == "on",
            "lookback_s": number("on_demand-lookback_s", integer=True),
        },
    }
    if get("hours_on") == "on":
        rules["hours"] = {
            "timezone": get("timezone"),
            "days": {day: _list(get("hours-" + day)) for day in WEEKDAYS if get("hours-" + day)},
            "holidays": _list(get("holidays")),
        }
    rules["numbers"], rows = [], []
    for i in range(_count(form)):
        name = get("numbers-%d-name" % i)
        if not name:
            continue
        rules["numbers"].append(
            {
                "name": name,
                "action": get("numbers-%d-action" % i),
                "patterns": _list(get("numbers-%d-patterns" % i)),
            }
        )
        rows.append(i)
        if any(is_sealed(p) for p in rules["numbers"][-1]["patterns"]):
            # Sealed text is how the box stores a pattern, never what a person types.
            errors["numbers-%d-patterns" % i] = (
                "A pattern is digits, '*' and '?', e.g. 0800* or 01632 96????."
            )
    if errors:
        return None, errors
    if not rules["directions"]:
        return None, {"direction": "Tick at least one direction."}
    data = policy.to_dict()
    data["rules"] = rules
    try:
        return PolicySettings.from_dict(data, "policy"), {}
    except ConfigError as exc:
        return None, {_form_field(exc.field, rows): exc.message}


def _list(text):
    return [x.strip() for x in _SPLIT.split(text) if x.strip()]


def _count(form):
    found = [row_index(k.split("-")[1]) for k in form.keys() if k.startswith("numbers-")]
    numbers = [n for n in found if n is not None]
    return max(numbers) + 1 if numbers else 0


def _form_field(path, number_rows):
    path = path or ""
    m = _LINE.match(path)
    if m:
        return "line-%d-mode" % (int(m.group(1)) + 1)
    m = _NUMBERS.match(path)
    if m:
        return "numbers-%d-%s" % (number_rows[int(m.group(1))], m.group(2))
    m = _HOURS_DAY.match(path)
    if m:
        return "hours-" + m.group(1)
    for prefix, field in (
        ("policy.rules.hours.timezone", "timezone"),
        ("policy.rules.hours.holidays", "holidays"),
        ("policy.rules.directions", "direction"),
        ("policy.rules.default_mode", "default_mode"),
        ("policy.rules.min_duration_s", "min_duration_s"),
        ("policy.rules.sample_percent", "sample_percent"),
        ("policy.rules.on_demand.", None),
        # The card-payment codes are the consent page's; only the on-demand code clashes here.
        ("policy.pci.", "on_demand-dtmf_code"),
    ):
        if path.startswith(prefix):
            return field or "on_demand-" + path[len(prefix) :].split(".")[0]
    return "form"
