"""The one way the policy's settings (and the box's other settings) are validated.

Each settings type is a frozen dataclass that checks itself when built
(:class:`Checked`), so one that exists is valid; :func:`build` turns a JSON
object into a type's keyword arguments, refusing unknown keys, and the
checks below raise :class:`~firmware.errors.ConfigError` naming the field by
its dotted path from the top of the configuration
(``policy.rules.lines[2].mode``); the configuration loader adds the file,
line and column. The settings types live beside the engines that use them
(:mod:`firmware.policy.rules`, :mod:`firmware.policy.consent`,
:mod:`firmware.policy.pause`, :mod:`firmware.policy.retention`);
:mod:`firmware.policy.settings` gathers them into the ``policy`` section.
"""

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn

from ..errors import ConfigError

DTMF_CODE = re.compile(r"[0-9*#A-D]{1,8}")


def shown(typed: str, most: int = 20) -> str:
    """What was typed, as an error message repeats it: its first ``most`` characters and
    "…" when it is longer (a long paste is not said back whole)."""
    return typed if len(typed) <= most else typed[:most] + "\u2026"


def fail(path: str | None, message: str) -> NoReturn:
    """Raise :class:`ConfigError` ``message`` about the field at ``path``."""
    raise ConfigError(message, field=path)


def check_int(value: Any, lo: int, hi: int, path: str, unit: str | None = "") -> None:
    """A whole number from ``lo`` to ``hi`` (``unit`` names what it counts)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        fail(
            path,
            "must be a whole number%s from %d to %d, not %r" % (" of " + unit if unit else "", lo, hi, value),
        )


def check_number(value: Any, lo: float, hi: float, path: str, unit: str | None = "") -> None:
    """A finite number from ``lo`` to ``hi``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not lo <= value <= hi
    ):
        fail(
            path, "must be a number%s from %g to %g, not %r" % (" of " + unit if unit else "", lo, hi, value)
        )


def check_bool(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        fail(path, "must be true or false, not %r" % (value,))


def check_choice(value: Any, choices: tuple[str, ...], path: str) -> None:
    if value not in choices:
        fail(path, "must be one of %s, not %r" % (", ".join('"%s"' % c for c in choices), value))


def check_text(value: Any, pattern: re.Pattern[str], path: str, what: str) -> None:
    """A string matching ``pattern`` whole; ``what`` says in words what is expected."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        fail(path, "must be %s, not %r" % (what, value))


def check_code(value: Any, path: str, optional: bool = True) -> None:
    """A DTMF key sequence (or None, when ``optional``)."""
    if value is None and optional:
        return
    check_text(value, DTMF_CODE, path, "1 to 8 DTMF keys (0-9 * # A-D), or null to turn it off")


def check_items(value: Any, cls: type, path: str) -> tuple[Any, ...]:
    """A tuple of ``cls`` objects (the JSON list :func:`build` made)."""
    if not isinstance(value, tuple):
        fail(path, "must be a list")
    for i, item in enumerate(value):
        if not isinstance(item, cls):
            fail("%s[%d]" % (path, i), "must be an object")
    return value


class Checked:
    """Checks itself when built, at its place in the configuration (``_PATH``).

    For :func:`build`, a subclass may also name its nested settings types
    (``_NESTED``: field -> type, or ``[type]`` for a list of them), its fields
    that are JSON lists (``_LISTS``) and fields that need converting
    (``_ADAPT``: field -> ``f(value, path)``).
    """

    _PATH: str | None = None

    def check(self, path: str | None) -> None:
        raise NotImplementedError

    def __post_init__(self) -> None:
        self.check(self._PATH)


def build(cls: type, data: Any, path: str) -> dict[str, Any]:
    """Keyword arguments for ``cls`` from JSON object ``data``: nested objects built,
    lists made tuples, unknown keys refused. Values are checked by the classes.

    :raises ConfigError: ``data`` is not an object, has an unknown key, misses a
        required one, or a nested value has the wrong shape
    """
    if not isinstance(data, dict):
        fail(path, "must be an object, not %r" % (data,))
    names = [f.name for f in dataclasses.fields(cls)]
    nested_types: dict[str, Any] = getattr(cls, "_NESTED", {})
    lists: tuple[str, ...] = getattr(cls, "_LISTS", ())
    adapt: dict[str, Callable[[Any, str], Any]] = getattr(cls, "_ADAPT", {})
    values = {}
    for key, value in data.items():
        where = "%s.%s" % (path, key)
        if key not in names:
            fail(where, "unknown setting (known here: %s)" % ", ".join(names))
        nested = nested_types.get(key)
        if isinstance(nested, list):
            if not isinstance(value, list):
                fail(where, "must be a list")
            value = tuple(
                nested[0](**build(nested[0], item, "%s[%d]" % (where, i))) for i, item in enumerate(value)
            )
        elif nested is not None and value is not None:
            value = nested(**build(nested, value, where))
        elif key in lists:
            if not isinstance(value, list):
                fail(where, "must be a list")
            value = tuple(value)
        elif key in adapt:
            value = adapt[key](value, where)
        values[key] = value
    for f in dataclasses.fields(cls):
        if (
            f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
            and f.name not in values
        ):
            fail("%s.%s" % (path, f.name), "is required")
    return values


def plain(value: Any) -> Any:
    """``dataclasses.asdict`` output as plain JSON data (tuples become lists)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
