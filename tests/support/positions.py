"""Checking where a refused data file (a scenario, a HAT file) says it went wrong."""

from firmware.errors import ConfigError


def text_at(text, position):
    """The rest of the line of ``text`` from ``position`` (1-based ``(line, column)``) on."""
    line, col = position
    return text.splitlines()[line - 1][col - 1 :]


def assert_names_field_and_position(err, text, name, field, message, at):
    """``err`` (raised loading ``text`` as the file ``name``) is a ConfigError naming
    ``field`` and ``message`` at the place in ``text`` that starts with ``at``, and says
    so as ``name:line:col: ...``."""
    assert isinstance(err, ConfigError) and isinstance(err, ValueError)
    assert err.field == field
    assert message in err.message
    assert err.position is not None
    assert text_at(text, err.position).startswith(at)
    assert str(err).startswith("%s:%d:%d: " % (name, *err.position))
