"""Release versions as ``scripts/make-bundle`` writes them, put in order.

A version is three numbers and at most one suffix (what make-bundle accepts):
``1.4.0``, ``1.4.0-rc.1``, ``1.4.0~rc1``, ``1.4.0.1``, ``1.4.0+hotfix2``. Neither
PEP 440 nor semver orders all of these (``~`` is Debian's, and semver ignores
``+``), and ``packaging`` is not a dependency, so the order is ours, Debian's where
the two differ, as the box is Debian and its technicians read versions the Debian way
(standard library only: scripts/system/rauc/install-check loads this file by itself):

- ``-`` and ``~`` start a pre-release, before the release itself (1.4.0-rc.1 < 1.4.0);
- ``.`` and ``+`` a later build of the release (1.4.0 < 1.4.0.1, 1.4.0 < 1.4.0+hotfix2);
- suffixes compare piece by piece, numbers as numbers (rc.2 < rc.10, rc2 < rc10), and
  words whatever their case (2.0.0~RC1 is 2.0.0~rc1, and comes before 2.0.0~rc2): the
  same release written two ways is one release, not two releases in an order nobody
  would read into them (Debian puts all capitals before small letters).
"""

import re

try:
    from ..errors import UpdateError
except ImportError:  # loaded on its own by RAUC's install-check (the system's python3)
    UpdateError = ValueError

_RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:([-~.+])([0-9A-Za-z.]+))?")
_PIECES = re.compile(r"\d+|[A-Za-z]+")


def release_key(version):
    """A key that sorts release versions in order (see the module docstring).

    :raises UpdateError: ``version`` is not a release version like 1.4.0
    """
    match = _RELEASE.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise UpdateError("%r is not a release version like 1.4.0" % (version,))
    major, minor, patch, mark, suffix = match.groups()
    # Before the release (-1), the release (0), a later build of it (1).
    rank = {None: 0, "-": -1, "~": -1, ".": 1, "+": 1}[mark]
    pieces = tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in _PIECES.findall(suffix or "")
    )
    return (int(major), int(minor), int(patch)), rank, pieces


def same_release(a, b):
    """True when ``a`` and ``b`` name one release (``1.4.0~RC1`` is ``1.4.0~rc1``); two
    strings that are no release versions, when they are equal."""
    try:
        return release_key(a) == release_key(b)
    except UpdateError:
        return a == b
