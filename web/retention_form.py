"""The retention form: between :class:`RetentionSettings` and the page's fields.

Field names: ``default_days``, ``rule-N-name|line|direction|category|days``
(rows in order), ``minimum-N-category|days``,
``sweep_interval_min``, ``disk_warning_percent``, ``disk_critical_percent``,
``overwrite_oldest_when_full`` ("on"), ``clock_tolerance_s``,
``clock_max_ahead_days``, ``requests_closed_days``, ``call_details_days``. An
empty days field of a rule, the default or the callers' details means "keep".

A row left wholly empty (the blank rows the page offers) is left out, and so is
a saved row (``rule-N-saved``/``minimum-N-saved``, hidden) whose name or category
was cleared, or whose ``rule-N-remove``/``minimum-N-remove`` box is ticked ("on",
whatever the rest of its row says): that is how one is removed. A new row with anything in it but its
name (a rule) or its category (a minimum) is refused, so that nothing the
installer typed is dropped unsaid. A pick list at its first choice ("any",
"both", "none") is not something typed.

:func:`parse_retention_form` returns settings or a message per bad field,
never half of each; the settings model itself does the validation, and its
dotted field paths are turned back into the form's field names.
"""

import re

from firmware.errors import ConfigError
from firmware.policy.retention import CATEGORY, RetentionSettings
from firmware.typed import control_problem

from .security import row_index, whole_number

BLANK_ROWS = 3
SCALARS = (
    "sweep_interval_min",
    "disk_warning_percent",
    "disk_critical_percent",
    "clock_tolerance_s",
    "clock_max_ahead_days",
    "requests_closed_days",
)
_RULE_PATH = re.compile(r"^retention\.rules\[(\d+)\]\.(\w+)$")
_MIN_PATH = re.compile(r"^retention\.minimum_days(?:\.(.+))?$")
# A rule's fields besides its name, as a refusal names them when they are given.
_RULE_PARTS = (("line", "a line"), ("direction", "a direction"), ("category", "a category"), ("days", "days"))


def form_values(settings):
    """The form fields for ``settings`` (with blank rows to add rules and minimums)."""
    values = {
        "default_days": "" if settings.default_days is None else str(settings.default_days),
        "call_details_days": "" if settings.call_details_days is None else str(settings.call_details_days),
        "overwrite_oldest_when_full": "on" if settings.overwrite_oldest_when_full else "",
    }
    for name in SCALARS:
        values[name] = str(getattr(settings, name))
    for i, rule in enumerate(settings.rules):
        for key in ("name", "line", "direction", "category", "days"):
            value = getattr(rule, key)
            values["rule-%d-%s" % (i, key)] = "" if value is None else str(value)
        values["rule-%d-saved" % i] = "1"
    for i, (category, days) in enumerate(sorted(settings.minimum_days.items())):
        values["minimum-%d-category" % i] = category
        values["minimum-%d-days" % i] = str(days)
        values["minimum-%d-saved" % i] = "1"
    return values


def rows(values, prefix):
    """How many rows of ``prefix`` ("rule" or "minimum") the form shows."""
    return _count(values, prefix) + BLANK_ROWS


def parse_retention_form(form, n_lines=None):
    """``(RetentionSettings or None, {field: message})`` from a submitted form; with
    ``n_lines``, a rule for a line the box has not got is refused."""
    errors = {}
    get = lambda k: (form.get(k) or "").strip()  # noqa: E731

    def number(field, required=False):
        text = get(field)
        if not text:
            if required:
                errors[field] = "Enter a whole number."
            return None
        if whole_number(text) is None:
            errors[field] = (
                "Enter a whole number (or leave it empty)." if not required else "Enter a whole number."
            )
            return None
        return whole_number(text)

    data = {
        "default_days": number("default_days"),
        "call_details_days": number("call_details_days"),
        "overwrite_oldest_when_full": get("overwrite_oldest_when_full") == "on",
    }
    for name in SCALARS:
        data[name] = number(name, required=True)
    rules, index = [], []
    for i in range(_count(form, "rule")):
        name = get("rule-%d-name" % i)
        given = [words for key, words in _RULE_PARTS if get("rule-%d-%s" % (i, key))]
        if not name and not given:
            continue  # a blank row
        if get("rule-%d-saved" % i) and (not name or get("rule-%d-remove" % i) == "on"):
            continue  # a saved rule whose name was cleared or Remove ticked: removed
        if not name:
            errors["rule-%d-name" % i] = (
                "A rule with %s needs a name: name it, or empty its row to leave it out." % _listed(given)
            )
        elif control_problem(name):
            # Shown on the pages, the staff notice and in the audit trail as typed.
            errors["rule-%d-name" % i] = control_problem(name)
        direction = get("rule-%d-direction" % i) or None
        line = number("rule-%d-line" % i)
        if line is not None and n_lines is not None and not 1 <= line <= n_lines:
            errors["rule-%d-line" % i] = "This box has lines 1 to %d: there is no line %d." % (n_lines, line)
        rules.append(
            {
                "name": name,
                "line": line,
                "direction": direction,
                "category": get("rule-%d-category" % i) or None,
                "days": number("rule-%d-days" % i),
            }
        )
        index.append(i)
    data["rules"] = rules
    minimum, min_index = {}, {}
    for i in range(_count(form, "minimum")):
        if get("minimum-%d-saved" % i) and get("minimum-%d-remove" % i) == "on":
            continue  # a saved minimum with Remove ticked: removed, as if its category were none
        category = get("minimum-%d-category" % i)
        if not category:
            if get("minimum-%d-days" % i) and not get("minimum-%d-saved" % i):
                errors["minimum-%d-category" % i] = (
                    "Minimum days need a category: choose one, or clear the days to leave the row out."
                )
                number("minimum-%d-days" % i)
            continue
        if category in minimum:
            errors["minimum-%d-category" % i] = "This category already has a minimum period."
        days = number("minimum-%d-days" % i, required=True)
        minimum[category] = days if days is not None else 0
        min_index[category] = i
    data["minimum_days"] = minimum
    if errors:
        return None, errors
    try:
        return RetentionSettings.from_dict(data, path="retention"), {}
    except ConfigError as exc:
        field = _form_field(exc.field, index, min_index)
        if field == "disk_critical_percent" and exc.message.startswith("must be above"):
            # The model names the other setting as the configuration file does.
            words = "Disk critical must be above Disk warning (%d %% full)." % data["disk_warning_percent"]
            return None, {field: words}
        return None, {field: exc.message}


def _listed(words):
    """``["a line", "days"]`` as "a line and days" (three or more: "a, b and c")."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def _count(form, prefix):
    found = [row_index(k.split("-")[1]) for k in form.keys() if k.startswith(prefix + "-")]
    numbers = [n for n in found if n is not None]
    return max(numbers) + 1 if numbers else 0


def _form_field(path, rule_rows, minimum_rows):
    """The form field of the model's dotted ``path``."""
    m = _RULE_PATH.match(path or "")
    if m:
        return "rule-%d-%s" % (rule_rows[int(m.group(1))], m.group(2))
    m = _MIN_PATH.match(path or "")
    if m:
        category = m.group(1)
        if category in minimum_rows:
            return "minimum-%d-days" % minimum_rows[category]
        bad = [i for c, i in minimum_rows.items() if not CATEGORY.match(c)]
        return "minimum-%d-category" % (bad or [0])[0]
    name = (path or "form").split(".")[-1]
    optional = ("default_days", "call_details_days", "overwrite_oldest_when_full")
    return name if name in SCALARS + optional else "form"
