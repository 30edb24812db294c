"""The checklist's "Private phones that are never recorded" in words (firmware.compliance)."""

from types import SimpleNamespace

import pytest

from firmware.compliance import GREEN, SAFEGUARDS

PRIVATE = dict(SAFEGUARDS)["Private phones that are never recorded"]


def state(private_lines):
    rules = SimpleNamespace(numbers=())
    return SimpleNamespace(
        private_lines=private_lines, config=SimpleNamespace(policy=SimpleNamespace(rules=rules))
    )


@pytest.mark.parametrize(
    "lines, said",
    [([1], "private line 1"), ([2, 4], "private lines 2 and 4"), ([1, 3, 4], "private lines 1, 3 and 4")],
)
def test_private_lines_are_said_singular_or_plural(lines, said):
    """It read "private line(s) 1" on the Setup checklist."""
    assert PRIVATE(state(lines)) == (GREEN, said)
