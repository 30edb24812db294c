"""JSON (and TOML) documents that remember where each value was written.

Every configuration and data file (HAT files, scenarios, ``config.json``,
configuration exports) is read through here, so each reports a bad value
the same way: by its place in the file *and* its field path, e.g.
``board/hats/x.json:41:19: lines[2].pins.ring.gpio: must be 0 to 27``.
Validators either walk the document with :class:`Node` (HAT files,
scenarios) or check the plain data and raise a
:class:`~telephony.errors.ConfigError` naming the field, which
:func:`located` places in the file (the firmware's typed configuration).

:func:`loads` parses with the stdlib :mod:`json` module (so malformed JSON is
reported with the json module's own line and column), then walks the text
once more with a small scanner that records the position of every value and
every object key by its path. Duplicate object keys, which :mod:`json`
silently collapses, are rejected. TOML is parsed with :mod:`tomllib`; its
values carry no positions (``None``), but syntax errors still do.

Limits keep a hostile or broken file from costing more than a clear error:
at most :data:`MAX_BYTES` (callers may pass their own), nesting at most
:data:`MAX_DEPTH` deep, numbers at most :data:`MAX_NUMBER_CHARS` characters
(a longer number is a mistake, and Python refuses to convert very long ones).
Only regular files are read (:func:`board.inputfile.read_input_file`).

Paths are tuples of keys and 0-based list indices, written as
``calls[2].caller_id.number`` by :func:`format_path`.

:class:`Node` is the validators' reading tool: it wraps one value with its
path and raises the document's error class (a
:class:`~telephony.errors.ConfigError` subclass) naming both on any problem.
"""

import bisect
import difflib
import json
import math
import os
import re
import tomllib
from json.decoder import scanstring

from telephony.errors import ConfigError, InputFileError

from .inputfile import printable_name, read_input_file

REQUIRED = object()  # marks a field without a default
MAX_BYTES = 8 << 20  # a data file larger than 8 MiB is not one we wrote
MAX_DEPTH = 32  # our formats nest 6 deep; 32 leaves room and no recursion risk
MAX_NUMBER_CHARS = 40  # digits, sign, point and exponent of one number
_WS = " \t\n\r"


def format_path(path):
    """``("calls", 2, "rings")`` -> ``"calls[2].rings"``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += "[%d]" % part
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_path(field):
    """``"calls[2].rings"`` -> ``("calls", 2, "rings")`` (the inverse of :func:`format_path`)."""
    path = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field or ""):
        path.append(int(index) if index else name)
    return tuple(path)


def located(doc, exc, prefix=()):
    """``exc``, a :class:`ConfigError` naming a field of ``doc`` (below ``prefix``), placed in the file.

    The result is the document's error class with its source, the field's
    full path and the line and column of the field's value (of its key for an
    unknown field; of the nearest enclosing value when the field is missing).
    """
    path = tuple(prefix) + parse_path(exc.field)
    unknown = exc.message.startswith("unknown")
    pos = doc.key_position(path) if unknown else doc.position(path)
    return doc.error(exc.message, source=doc.source, field=format_path(path) or None, position=pos)


class Document:
    """A parsed file: ``data`` plus the position of each value and key.

    :param error: the :class:`ConfigError` subclass raised for problems in it
    """

    def __init__(self, data, source=None, error=ConfigError, positions=None, key_positions=None):
        self.data = data
        self.source = source
        self.error = error
        self._positions = positions or {}
        self._key_positions = key_positions or {}

    def position(self, path):
        """(line, column) of the value at ``path``, or of its nearest ancestor; None for TOML."""
        path = tuple(path)
        while path not in self._positions and path:
            path = path[:-1]
        return self._positions.get(path)

    def key_position(self, path):
        """(line, column) of the key naming ``path`` (falls back to :meth:`position`)."""
        return self._key_positions.get(tuple(path)) or self.position(path)

    @property
    def root(self):
        return Node(self, self.data, ())

    def fail(self, message, path=(), *, at_key=False):
        """Raise the document's error for the field at ``path``."""
        pos = self.key_position(path) if at_key else self.position(path)
        raise self.error(message, source=self.source, field=format_path(path) or None, position=pos)


def loads(text, source=None, *, error=ConfigError, toml=False):
    """Parse JSON (or TOML) ``text`` into a :class:`Document`; raises ``error``."""
    if toml:
        return _loads_toml(text, source, error)
    if text.startswith("\ufeff"):
        text = text[1:]

    def bad_constant(name):
        raise _NotFinite(name)

    try:
        data = json.loads(
            text, parse_constant=bad_constant, parse_int=_number(int), parse_float=_number(float)
        )
    except json.JSONDecodeError as exc:
        raise error("malformed JSON: %s" % exc.msg, source=source, position=(exc.lineno, exc.colno)) from None
    except _TooLong as exc:
        raise error(exc.message, source=source, position=_find(text, exc.literal)) from None
    except RecursionError:
        raise error("malformed JSON: nested more than %d deep" % MAX_DEPTH, source=source) from None
    except ValueError as exc:
        raise error("malformed JSON: %s" % exc, source=source) from None
    scanner = _Scanner(text, source, error)
    scanner.value(0, ())
    return Document(data, source, error, scanner.positions, scanner.key_positions)


class _TooLong(ValueError):
    def __init__(self, literal):
        super().__init__(literal)
        self.literal = literal
        self.message = "a number of %d characters is too long (at most %d)" % (len(literal), MAX_NUMBER_CHARS)


class _NotFinite(_TooLong):
    def __init__(self, literal):
        super().__init__(literal)
        if literal.lstrip("+-").lower() in ("inf", "nan", "infinity"):
            self.message = "%s is not allowed in a data file" % literal
        else:  # JSON's 1e400: Python reads it as infinity
            self.message = "the number %s is too large" % literal


def _number(convert):
    """A json ``parse_int``/``parse_float`` hook refusing over-long and infinite numbers."""

    def parse(literal):
        if len(literal) > MAX_NUMBER_CHARS:
            raise _TooLong(literal)
        value = convert(literal)
        if isinstance(value, float) and not math.isfinite(value):
            raise _NotFinite(literal)
        return value

    return parse


def _find(text, literal):
    """(line, column) of the first occurrence of ``literal`` in ``text`` as a token of its
    own (``inf`` not in ``info``, ``1e400`` not in ``"1e400"``), or None."""
    match = re.search(r"(?<![\w.+\"'-])%s(?![\w.\"'])" % re.escape(literal), text)
    if match is None:
        return None
    idx = match.start()
    line = text.count("\n", 0, idx) + 1
    return line, idx - (text.rfind("\n", 0, idx) + 1) + 1


def load(path, *, error=ConfigError, max_bytes=MAX_BYTES):
    """Read and parse a file; ``.toml`` files as TOML, everything else as JSON.

    Only a regular file of at most ``max_bytes`` is read.
    """
    source = os.fspath(path)
    try:
        raw = read_input_file(source, max_bytes)
    except InputFileError as exc:
        raise error(str(exc), source=printable_name(source)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error("not UTF-8 text (byte %d)" % exc.start, source=source) from None
    return loads(text, source, error=error, toml=source.lower().endswith(".toml"))


def _loads_toml(text, source, error):
    try:
        data = tomllib.loads(text, parse_float=_number(float))
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        pos = (int(m.group(1)), int(m.group(2))) if m else None
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg)
        raise error("malformed TOML: %s" % msg, source=source, position=pos) from None
    except _TooLong as exc:
        raise error(exc.message, source=source, position=_find(text, exc.literal)) from None
    except RecursionError:
        raise error("malformed TOML: nested more than %d deep" % MAX_DEPTH, source=source) from None
    except ValueError as exc:  # tomllib's own int() of a number too long to convert
        raise error("malformed TOML: %s" % str(exc).split(";")[0], source=source) from None
    _check_toml(data, source, error, ())
    return Document(data, source, error)


def _check_toml(value, source, error, path):
    """Apply :data:`MAX_DEPTH` and the number limit to parsed TOML (it has no positions)."""
    if len(path) > MAX_DEPTH:
        raise error("nested more than %d deep" % MAX_DEPTH, source=source, field=format_path(path))
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        raise error("the number is too large", source=source, field=format_path(path))
    children = (
        value.items() if isinstance(value, dict) else (enumerate(value) if isinstance(value, list) else ())
    )
    for key, child in children:
        _check_toml(child, source, error, path + (key,))


class _Scanner:
    """Walks JSON text already known to be valid, recording positions by path."""

    def __init__(self, text, source, error):
        self.text = text
        self.source = source
        self.error = error
        self.positions = {}
        self.key_positions = {}
        self._decoder = json.JSONDecoder()
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def pos(self, idx):
        line = bisect.bisect_right(self._line_starts, idx)
        return line, idx - self._line_starts[line - 1] + 1

    def ws(self, idx):
        while self.text[idx] in _WS:
            idx += 1
        return idx

    def value(self, idx, path):
        idx = self.ws(idx)
        self.positions[path] = self.pos(idx)
        c = self.text[idx]
        if c in "{[" and len(path) >= MAX_DEPTH:
            raise self.error(
                "nested more than %d deep" % MAX_DEPTH,
                source=self.source,
                field=format_path(path),
                position=self.pos(idx),
            )
        if c == "{":
            return self._object(idx + 1, path)
        if c == "[":
            return self._array(idx + 1, path)
        _, end = self._decoder.raw_decode(self.text, idx)
        return end

    def _object(self, idx, path):
        idx = self.ws(idx)
        if self.text[idx] == "}":
            return idx + 1
        seen = set()
        while True:
            idx = self.ws(idx)
            key_idx = idx
            key, idx = scanstring(self.text, idx + 1)
            child = path + (key,)
            if key in seen:
                raise self.error(
                    "duplicate key %r" % key,
                    source=self.source,
                    field=format_path(child),
                    position=self.pos(key_idx),
                )
            seen.add(key)
            self.key_positions[child] = self.pos(key_idx)
            idx = self.ws(idx) + 1  # past ':'
            idx = self.ws(self.value(idx, child))
            if self.text[idx] == "}":
                return idx + 1
            idx += 1  # past ','

    def _array(self, idx, path):
        idx = self.ws(idx)
        if self.text[idx] == "]":
            return idx + 1
        i = 0
        while True:
            idx = self.ws(self.value(idx, path + (i,)))
            i += 1
            if self.text[idx] == "]":
                return idx + 1
            idx += 1


class Node:
    """One value of a :class:`Document` with its path, for validators.

    Every ``get_*`` method reads a field of an object node, applies a default
    when the field is absent (or raises if the default is :data:`REQUIRED`)
    and checks its type and range, raising the document's error that names the
    field and its position.
    """

    __slots__ = ("doc", "value", "path")

    def __init__(self, doc, value, path):
        self.doc = doc
        self.value = value
        self.path = tuple(path)

    @property
    def field(self):
        return format_path(self.path)

    @property
    def position(self):
        return self.doc.position(self.path)

    def fail(self, message, *, at_key=False):
        self.doc.fail(message, self.path, at_key=at_key)

    # ----------------------------------------------------------- structure
    def require(self, *keys):
        """Check this is an object that has all of ``keys`` (others are not checked)."""
        if not isinstance(self.value, dict):
            self.fail("must be an object (%s), not %s" % (_braces(self.doc), _kind(self.value)))
        for key in keys:
            if key not in self.value:
                self.fail("missing required field %r" % key)
        return self

    def object(self, required=(), optional=()):
        """Check this is an object with only the given keys, and all required ones."""
        self.require()
        allowed = tuple(required) + tuple(optional)
        for key in self.value:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                self.doc.fail(
                    "unknown field%s; allowed here: %s"
                    % (" (did you mean %r?)" % hint[0] if hint else "", ", ".join(allowed)),
                    self.path + (key,),
                    at_key=True,
                )
        return self.require(*required)

    def has(self, key):
        return key in self.value

    def child(self, key):
        return Node(self.doc, self.value[key], self.path + (key,))

    def items(self, min_len=0):
        """This list's elements as nodes."""
        if not isinstance(self.value, list):
            self.fail("must be a list, not %s" % _kind(self.value))
        if len(self.value) < min_len:
            self.fail("must have at least %d element%s" % (min_len, "s" if min_len > 1 else ""))
        return [Node(self.doc, v, self.path + (i,)) for i, v in enumerate(self.value)]

    # ----------------------------------------------------------- typed reads
    def _get(self, key, default):
        if key in self.value:
            return self.child(key)
        if default is REQUIRED:
            self.fail("missing required field %r" % key)
        return None

    def get_int(self, key, default=REQUIRED, lo=None, hi=None, hex_ok=False):
        node = self._get(key, default)
        return default if node is None else node.as_int(lo, hi, hex_ok)

    def get_number(self, key, default=REQUIRED, lo=None, hi=None, lo_open=False):
        node = self._get(key, default)
        return default if node is None else node.as_number(lo, hi, lo_open)

    def get_str(self, key, default=REQUIRED, choices=None, pattern=None, max_len=None):
        node = self._get(key, default)
        return default if node is None else node.as_str(choices, pattern, max_len)

    def get_bool(self, key, default=REQUIRED):
        node = self._get(key, default)
        return default if node is None else node.as_bool()

    def as_int(self, lo=None, hi=None, hex_ok=False):
        v = self.value
        if hex_ok and isinstance(v, str) and re.fullmatch(r"0[xX][0-9a-fA-F]+", v):
            v = int(v, 16)
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(
                "must be a whole number%s, not %s"
                % (' (or a "0x.." hex string)' if hex_ok else "", _kind(self.value))
            )
        self._range(v, lo, hi, isinstance(self.value, str))
        return v

    def as_number(self, lo=None, hi=None, lo_open=False):
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self.fail("must be a number, not %s" % _kind(v))
        if lo_open and v <= lo:
            self.fail("must be more than %g, not %g" % (lo, v))
        self._range(v, None if lo_open else lo, hi)
        return v

    def as_str(self, choices=None, pattern=None, max_len=None):
        v = self.value
        if not isinstance(v, str):
            self.fail("must be a string, not %s" % _kind(v))
        if choices is not None and v not in choices:
            self.fail("must be one of %s, not %r" % (", ".join(map(repr, choices)), v))
        if pattern is not None and not re.fullmatch(pattern[0], v):
            self.fail("%s, not %r" % (pattern[1], v))
        if max_len is not None and len(v) > max_len:
            self.fail("must be at most %d characters long, not %d" % (max_len, len(v)))
        return v

    def as_bool(self):
        if not isinstance(self.value, bool):
            self.fail("must be true or false, not %s" % _kind(self.value))
        return self.value

    def _range(self, v, lo, hi, hexfmt=False):
        def fmt(x):
            if hexfmt and x >= 0:
                return "0x%02x" % x
            return "%d" % x if isinstance(x, int) else "%g" % x

        if (lo is not None and v < lo) or (hi is not None and v > hi):
            if lo is not None and hi is not None:
                self.fail("must be %s to %s, not %s" % (fmt(lo), fmt(hi), fmt(v)))
            if lo is not None:
                self.fail("must be at least %s, not %s" % (fmt(lo), fmt(v)))
            self.fail("must be at most %s, not %s" % (fmt(hi), fmt(v)))


def _braces(doc):
    return "a table" if doc.source and str(doc.source).lower().endswith(".toml") else "{...}"


def _kind(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return "the number %r" % v
    if isinstance(v, str):
        return "the string %r" % (v if len(v) < 40 else v[:37] + "...")
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__
