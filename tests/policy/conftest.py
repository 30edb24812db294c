"""Instruments for the retention tests: a data directory with calls and recordings.

:class:`Shelf` holds a box's storage without the box: the real call log
schema, :class:`RecordingStore`, audit trail and sweeper, on a
:class:`SimClock` that tests move (and make jump). Recordings are real rows
with real wrapped keys (to a throwaway key pair) and files of random bytes:
retention never opens the audio."""

import pytest

from support.retention import (
    Shelf,
)


@pytest.fixture
def shelf(tmp_path):
    s = Shelf(tmp_path)
    yield s
    s.close()
