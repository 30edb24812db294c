"""The per-box setup code that guards the first-run wizard.

Random per box (79 bits, as ``XXXX-XXXX-XXXX-XXXX`` in a 31-symbol alphabet
without 0/O/1/I/L), made at the first start, printed on the console at every
start until setup is done, and meant for the box's label: never a shared
default (UK PSTI, SI 2023/1007). Wrong guesses are throttled per address.

It is kept in clear in ``DATA_DIR/setup-code`` (mode 0600) rather than
hashed, because it must be printed again at each start until it is used, and
a hash would protect nothing: whoever can read the data directory can also
replace a stored hash. The file is deleted when setup completes, after which
:func:`setup_code_for` returns None.
"""

import hmac
import os
import secrets
import sqlite3

from firmware.storage.fsutil import atomic_write, fsync_dir

# No 0/O, 1/I/L: nothing to misread on a label. 31 symbols, 16 of them: 79 bits.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
FILE_NAME = "setup-code"


def _new_code():
    chars = "".join(secrets.choice(ALPHABET) for _ in range(16))
    return "-".join(chars[i : i + 4] for i in range(0, 16, 4))


def setup_is_complete(data_dir):
    """True when web.db says the setup wizard has been completed."""
    path = os.path.join(data_dir, "web.db")
    if not os.path.exists(path):
        return False
    try:
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        try:
            row = db.execute("SELECT value FROM site WHERE key = 'setup_complete'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return False
    return row is not None and row[0] == "true"


def setup_code_for(data_dir):
    """The box's setup code (made on first call), or None once setup is complete.

    Raises :class:`OSError` if the data directory cannot be written.
    """
    if setup_is_complete(data_dir):
        return None
    path = os.path.join(data_dir, FILE_NAME)
    try:
        with open(path, encoding="ascii") as f:
            code = f.read().strip()
        if code:
            return code
    except FileNotFoundError:
        pass
    os.makedirs(data_dir, exist_ok=True)
    code = _new_code()
    atomic_write(path, (code + "\n").encode("ascii"), mode=0o600)
    return code


def normalise(code):
    """What a person typed, in the canonical form (case, spaces and dashes ignored)."""
    return "".join((code or "").upper().split()).replace("-", "")


def check_setup_code(data_dir, typed):
    """True when ``typed`` is this box's setup code (before setup completes)."""
    expected = setup_code_for(data_dir)
    if expected is None:
        return False
    return hmac.compare_digest(normalise(typed).encode(), normalise(expected).encode())


def forget_setup_code(data_dir):
    """Delete the code durably (setup is complete)."""
    path = os.path.join(data_dir, FILE_NAME)
    try:
        os.remove(path)
    except FileNotFoundError:
        return
    fsync_dir(data_dir)
