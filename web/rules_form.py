"""The recording-rules form: between :class:`RecordingRules` and the page's fields.

Fields: ``default_mode``; ``line-N-mode`` and ``line-N-outside_line`` (the digit its
switchboard takes before an outside number, 1 or 2 digits; empty: none) per line;
``direction`` (checkboxes
"in", "out"); ``hours_on`` ("on" to limit "by_rule" lines to business hours),
``timezone``, ``hours-mon`` .. ``hours-sun`` ("09:00-12:30, 13:30-17:30";
empty: closed), ``holidays`` (dates, one per line or comma-separated);
``numbers-N-name|action|patterns`` (patterns comma-separated; a row left
wholly empty, its action at "exclude", the first choice, is left out; a saved one
(``numbers-N-saved``, hidden) whose name was cleared, or whose ``numbers-N-remove``
box is ticked ("on"), is removed; a new one with
patterns or "include" but no name is refused, never dropped unsaid);
``min_duration_s``, ``sample_percent``; ``on_demand-dtmf_code`` (empty: off),
``on_demand-button``, ``on_demand-from_start`` ("on"), ``on_demand-lookback_s``;
``personal-dtmf_code`` (empty: off) and ``line-N-personal``
("on": the personal-call code works on line N; every line ticked is every line, those
added later too).

Validation is the settings model's (:meth:`PolicySettings.from_dict`, so a
DTMF code clashing with the PCI codes is caught too); its dotted field paths
are turned back into form field names. A form with several mistakes gets a
message for each, beside its field, in one go.
"""

import re

from firmware.errors import ConfigError
from firmware.policy.checks import DTMF_CODE, shown
from firmware.policy.pause import code_refusal
from firmware.policy.rules import never_matched
from firmware.policy.settings import WEEKDAYS, PolicySettings
from firmware.storage.fieldseal import is_sealed
from firmware.typed import control_problem

from .security import decimal_number, row_index, whole_number

BLANK_ROWS = 2
_LINE = re.compile(r"^policy\.rules\.lines\[(\d+)\]")
_NUMBERS = re.compile(r"^policy\.rules\.numbers\[(\d+)\]\.(name|action|patterns)")
_HOURS_DAY = re.compile(r"^policy\.rules\.hours\.days\.(\w+)")
_LINE_OUTSIDE = re.compile(r"^policy\.rules\.lines\[(\d+)\]\.outside_line")
_LINE_FIELD = re.compile(r"^line-(\d+)-mode$")
_OUTSIDE_FIELD = re.compile(r"^line-(\d+)-outside_line$")
_OUTSIDE_LINE = re.compile(r"[0-9]{0,2}")
_NUMBERS_FIELD = re.compile(r"^numbers-(\d+)-")
# The settings model's words for two lists of one name, by their place in the rules.
_SAME_NAME = re.compile(r"^numbers\[(\d+)\] already has this name$")
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
        "personal-dtmf_code": rules.personal.dtmf_code or "",
    }
    for n in range(1, n_lines + 1):
        values["line-%d-mode" % n] = rules.mode(n)
        values["line-%d-outside_line" % n] = rules.outside_line(n)
        values["line-%d-personal" % n] = (
            "on" if rules.personal.lines is None or n in rules.personal.lines else ""
        )
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
        values["numbers-%d-saved" % i] = "1"
    return values


def number_rows(values):
    return _count(values) + BLANK_ROWS


def _num(value):
    return ("%d" % value) if float(value).is_integer() else ("%g" % value)


def parse_rules_form(form, n_lines, policy, also=None, country="uk"):
    """``(PolicySettings or None, {field: message})``: ``policy`` with the form's rules,
    or a message for every bad field (not only the first). ``also(rules)`` gives more
    ``{field: message}`` about rules that are otherwise good (the view's own checks).
    ``country``: the box's, whose numbering plan says which list entries match nothing."""
    errors = {}
    get = lambda k: (form.get(k) or "").strip()  # noqa: E731

    def number(field, integer=False):
        text = get(field)
        value = whole_number(text) if integer else decimal_number(text)
        if value is None:
            errors[field] = "Enter a %snumber in digits 0-9." % ("whole " if integer else "")
            return 0
        return int(value) if not integer and value.is_integer() else value

    rules = {
        "default_mode": get("default_mode"),
        "lines": [_line(get, n, errors) for n in range(1, n_lines + 1)],
        "directions": [d for d in ("in", "out") if d in form.getlist("direction")],
        "min_duration_s": number("min_duration_s"),
        "sample_percent": number("sample_percent"),
        "on_demand": {
            "dtmf_code": get("on_demand-dtmf_code") or None,
            "button": get("on_demand-button") == "on",
            "from_start": get("on_demand-from_start") == "on",
            "lookback_s": number("on_demand-lookback_s", integer=True),
        },
        "personal": _personal(get, n_lines, errors),
    }
    if get("hours_on") == "on":
        rules["hours"] = {
            "timezone": get("timezone"),
            "days": {day: _windows(get("hours-" + day)) for day in WEEKDAYS if get("hours-" + day)},
            "holidays": _list(get("holidays")),
        }
    elif policy.rules.hours is None and (any(get("hours-" + day) for day in WEEKDAYS) or get("holidays")):
        # Typed with the box unticked, they were dropped unsaid and the page said "Saved".
        # Hours already saved, shown and then unticked, are turned off as the page says.
        errors["hours_on"] = (
            'Hours or public holidays are typed below, but "Only inside these hours" is not ticked, '
            "so they would not apply: tick it, or empty them."
        )
    rules["numbers"], rows = [], []
    for i in range(_count(form)):
        name = get("numbers-%d-name" % i)
        if get("numbers-%d-saved" % i) and get("numbers-%d-remove" % i) == "on":
            continue  # a saved list with Remove ticked: removed, as if its name were cleared
        if not name:
            given = _list_given(get, i)
            # A saved list whose name was cleared is removed, as the page says.
            if given and not get("numbers-%d-saved" % i):
                errors["numbers-%d-name" % i] = (
                    "%s needs a name: name it, or empty its row to leave it out." % given
                )
            continue  # else a blank row
        rules["numbers"].append(
            {
                "name": name,
                "action": get("numbers-%d-action" % i),
                "patterns": _list(get("numbers-%d-patterns" % i)),
            }
        )
        rows.append(i)
        if control_problem(name):
            # Shown on the pages, the staff notice and in the audit trail as typed.
            errors["numbers-%d-name" % i] = control_problem(name)
        elif any(is_sealed(p) for p in rules["numbers"][-1]["patterns"]):
            # Sealed text is how the box stores a pattern, never what a person types.
            errors["numbers-%d-patterns" % i] = (
                "A pattern is digits, '*' and '?', e.g. 0800* or 01632 96????."
            )
        else:
            never = _never_matched(rules["numbers"][-1]["patterns"], country)
            if never:
                errors["numbers-%d-patterns" % i] = never
    if not rules["directions"]:
        errors["direction"] = "Tick at least one direction."
    errors.update(_model_errors(rules, rows, policy, errors))
    if get("hours_on") == "on" and not any(_list(get("hours-" + day)) for day in WEEKDAYS):
        for field, message in _no_hours(rules).items():
            errors.setdefault(field, message)
    try:
        # The bad fields are back as saved: what is left is what the form would change.
        checked = _checked(rules, policy)
    except ConfigError:  # a mistake no field shows, already in errors["form"]
        checked = None
    if checked is not None and also is not None:
        for field, message in also(checked.rules).items():
            errors.setdefault(field, message)
    if errors:
        return None, errors
    return checked, {}


def _never_matched(patterns, country):
    """The page's words for the first of ``patterns`` that can match no call
    (:func:`firmware.policy.rules.never_matched`), or ""."""
    for pattern in patterns:
        why = never_matched(pattern, country)
        if why:
            return (
                '"%s" has no "*" or "?", so it matches only that number exactly, and %s: it '
                'would match no call. Add "*" to match every number beginning so ("%s*"), '
                "or give the whole number." % (pattern, why, pattern)
            )
    return ""


def _no_hours(rules):
    """``{field: message}`` for each "by the rules" line (and lines added later, if that
    is their mode) while business hours are on with no day given any: such a line would
    record no call at all, and the installer would never be told."""
    why = "only inside business hours, and no day has any: %s would record no call. "
    fix = 'Set the hours, untick "Only inside these hours", or choose another mode for %s.'
    found = {
        "line-%d-mode" % item["line"]: (
            "Line %d is set to record by the rules " % item["line"]
            + why % "it"
            + fix % ("line %d" % item["line"])
        )
        for item in rules["lines"]
        if item["mode"] == "by_rule"
    }
    if rules["default_mode"] == "by_rule":
        found["default_mode"] = (
            "Lines added later are set to record by the rules " + why % "they" + fix % ("lines added later")
        )
    return found


def _list_given(get, i):
    """What row ``i`` of the number lists has besides a name, in words ("A list with
    patterns", "An include list"), or "" if nothing: the action at its first choice,
    "exclude", is what a blank row sends, not something chosen."""
    action = get("numbers-%d-action" % i)
    patterns = get("numbers-%d-patterns" % i)
    if not patterns and action in ("", "exclude"):
        return ""
    kind = "An include list" if action == "include" else "A list"
    return kind + (" with patterns" if patterns else "")


def _line(get, n, errors):
    """Line ``n``'s settings from the form: its mode and its outside-line digit."""
    field = "line-%d-outside_line" % n
    outside = get(field)
    if not _OUTSIDE_LINE.fullmatch(outside):
        errors[field] = (
            "Line %d's outside-line digit is the 1 or 2 digits its switchboard takes before an "
            "outside number (such as 9), or empty if it has none, not %s." % (n, shown(outside))
        )
    return {"line": n, "mode": get("line-%d-mode" % n), "outside_line": outside}


def _personal(get, n_lines, errors):
    """The personal-call code's settings from the form: its code (empty: off) and the
    lines ticked (all of them: every line, those added later too)."""
    code = get("personal-dtmf_code").upper() or None
    lines = [n for n in range(1, n_lines + 1) if get("line-%d-personal" % n) == "on"]
    if code is not None and not lines:
        errors["personal-dtmf_code"] = (
            "Tick the lines the personal-call code works on, or leave the code empty to turn it off."
        )
    return {"dtmf_code": code, "lines": None if len(lines) == n_lines or not lines else lines}


def _checked(rules, policy):
    data = policy.to_dict()
    data["rules"] = rules
    return PolicySettings.from_dict(data, "policy")


def _model_errors(rules, rows, policy, errors):
    """``{field: message}``: every mistake the settings model finds in ``rules``, not
    only its first one.

    The model stops at the first bad field, so each bad field found is put back as it
    is saved (a bad number list or business-hours day is left out) and the rules are
    checked again, until they pass; ``errors`` (the form's own, found first) are put
    back too and keep their messages. ``rules`` and ``rows`` are changed in place."""
    found, tried = {}, set(errors)
    for field in errors:
        _put_back(field, rules, rows, policy.rules)
    while True:
        try:
            _checked(rules, policy)
            return found
        except ConfigError as exc:
            field = _form_field(exc.field, rows, exc.message)
            if field not in errors:
                found.setdefault(field, _page_words(exc.message, rules, rows))
            if field in tried or not _put_back(field, rules, rows, policy.rules):
                return found  # not a field that can be put back: said, never looped on
            tried.add(field)


def _page_words(message, rules, rows):
    """The model's ``message`` in the page's words: a list is "list N" as the page
    labels it (its row in the form), with its name, not its place in the rules; a code
    is turned off by leaving its field empty, not with the configuration file's null."""
    message = message.replace(", or null to turn it off", ", or empty to turn it off")
    m = _SAME_NAME.match(message)
    if not m or int(m.group(1)) >= len(rows):
        return message
    at = int(m.group(1))
    return 'List %d is already named "%s": give each list a name of its own.' % (
        rows[at] + 1,
        rules["numbers"][at]["name"],
    )


def _put_back(field, rules, rows, saved):
    """Put ``field``'s value in ``rules`` back as ``saved`` has it; False: not a field
    that can be."""
    m = _LINE_FIELD.match(field)
    if m:
        line = int(m.group(1))
        rules["lines"] = [
            dict(item, mode=saved.mode(line)) if item["line"] == line else item for item in rules["lines"]
        ]
        return True
    m = _OUTSIDE_FIELD.match(field)
    if m:
        line = int(m.group(1))
        rules["lines"] = [
            dict(item, outside_line=saved.outside_line(line)) if item["line"] == line else item
            for item in rules["lines"]
        ]
        return True
    m = _NUMBERS_FIELD.match(field)
    if m:
        if int(m.group(1)) not in rows:
            return False
        at = rows.index(int(m.group(1)))
        del rules["numbers"][at], rows[at]
        return True
    hours = rules.get("hours")
    if field.startswith("hours-") and hours is not None:
        return hours["days"].pop(field[len("hours-") :], None) is not None
    if field == "timezone" and hours is not None:
        hours["timezone"] = saved.hours.timezone if saved.hours is not None else "Europe/London"
        return True
    if field == "holidays" and hours is not None:
        hours["holidays"] = []
        return True
    if field == "direction":
        rules["directions"] = list(saved.directions)
        return True
    if field in ("default_mode", "min_duration_s", "sample_percent"):
        rules[field] = getattr(saved, field)
        return True
    if field == "personal-dtmf_code":
        rules["personal"] = {"dtmf_code": saved.personal.dtmf_code, "lines": _plain(saved.personal.lines)}
        return True
    if field.startswith("on_demand-") and field[len("on_demand-") :] in rules["on_demand"]:
        name = field[len("on_demand-") :]
        rules["on_demand"][name] = getattr(saved.on_demand, name)
        return True
    return False


def _plain(lines):
    return None if lines is None else list(lines)


def _windows(text):
    """A day's windows as typed, each written as the configuration has it: "08:00 - 17:30"
    (spaces round the dash, as people type a range) is "08:00-17:30"; anything else is
    left for the model to refuse ("9-5" is not said to be 09:00 to 17:00)."""
    return [_WINDOW_SPACED.sub(r"\1-\2", w) for w in _list(text)]


_WINDOW_SPACED = re.compile(r"^(\d\d:\d\d)\s*-\s*(\d\d:\d\d)$")


def _list(text):
    return [x.strip() for x in _SPLIT.split(text) if x.strip()]


def _count(form):
    found = [row_index(k.split("-")[1]) for k in form.keys() if k.startswith("numbers-")]
    numbers = [n for n in found if n is not None]
    return max(numbers) + 1 if numbers else 0


def _form_field(path, number_rows, message=""):
    path = path or ""
    if path.startswith("policy.rules.personal.") or (
        path.startswith("policy.pci.") and "the personal-call code" in message
    ):
        # Its own field, or a card-payment code (a form of its own) it clashes with.
        return "personal-dtmf_code"
    m = _LINE_OUTSIDE.match(path)
    if m:
        return "line-%d-outside_line" % (int(m.group(1)) + 1)
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
        # The card-payment codes have a form of their own (parse_pci_form): only the
        # on-demand code, which clashes with them, is in this one.
        ("policy.pci.", "on_demand-dtmf_code"),
    ):
        if path.startswith(prefix):
            return field or "on_demand-" + path[len(prefix) :].split(".")[0]
    return "form"


#: The card-payment form's fields (``pci-`` and the name of a :class:`PciSettings` field).
PCI_FIELDS = ("pause_code", "resume_code", "button", "auto_resume_s", "mask_dtmf")
_PCI_CODES = {"pause_code": "pause", "resume_code": "resume"}


def pci_values(pci):
    """The card-payment form's fields for ``pci`` (a :class:`PciSettings`)."""
    return {
        "pci-pause_code": pci.pause_code or "",
        "pci-resume_code": pci.resume_code or "",
        "pci-button": "on" if pci.button else "",
        "pci-auto_resume_s": str(pci.auto_resume_s),
        "pci-mask_dtmf": "on" if pci.mask_dtmf else "",
    }


def parse_pci_form(form, policy):
    """``(PolicySettings or None, {field: message})``: ``policy`` with the card-payment
    form's settings (fields ``pci-pause_code`` and ``pci-resume_code``, empty: off;
    ``pci-button`` and ``pci-mask_dtmf`` "on"; ``pci-auto_resume_s``), or a message for
    every bad field. Each field is checked by the settings model on its own, then all
    together (the two codes, and either against the on-demand code, must not clash)."""
    errors = {}
    get = lambda k: (form.get(k) or "").strip()  # noqa: E731
    pci = {}
    for name, what in _PCI_CODES.items():
        code = get("pci-" + name).upper()
        if code and not DTMF_CODE.fullmatch(code):
            errors["pci-" + name] = (
                "The %s code is 1 to 8 keys of the handset (0-9, * and #), such as *1; "
                "leave it empty to turn it off." % what
            )
        elif code:
            refused = code_refusal(code, what)
            if refused:
                errors["pci-" + name] = refused
        pci[name] = code or None
    if pci["pause_code"] and pci["pause_code"] == pci["resume_code"] and not errors:
        errors["pci-resume_code"] = "The resume code must differ from the pause code."
    pci["button"] = get("pci-button") == "on"
    pci["mask_dtmf"] = get("pci-mask_dtmf") == "on"
    pci["auto_resume_s"] = whole_number(get("pci-auto_resume_s"))
    if pci["auto_resume_s"] is None:
        errors["pci-auto_resume_s"] = "Enter a whole number of seconds (10 to 1800), in digits 0-9."
    saved = policy.to_dict()["pci"]
    for name in PCI_FIELDS:
        field = "pci-" + name
        if field in errors:
            continue
        try:
            _with_pci(policy, dict(saved, **{name: pci[name]}))
        except ConfigError as exc:
            errors[field] = exc.message
    if errors:
        return None, errors
    try:
        return _with_pci(policy, pci), {}
    except ConfigError as exc:  # the two codes together: said beside the later one
        name = (exc.field or "").rsplit(".", 1)[-1]
        return None, {"pci-" + (name if name in PCI_FIELDS else "pause_code"): exc.message}


def _with_pci(policy, pci):
    data = policy.to_dict()
    data["pci"] = pci
    return PolicySettings.from_dict(data, "policy")
