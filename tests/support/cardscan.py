"""Scanning a copy of the SD card for personal data, in every form it may hide as."""

import base64
import contextlib
import os


def forms(text):
    """The byte strings ``text`` may hide as: raw, hex, base64 at each alignment, UTF-16."""
    raw = text.encode("utf-8")
    out = {raw, raw.hex().encode(), raw.hex().upper().encode()}
    out |= {text.encode("utf-16-le"), text.encode("utf-16-be")}
    for skip in range(3):
        # The base64 of any text that holds ``raw`` at some offset holds this core.
        encoded = base64.b64encode(b"\0" * skip + raw)
        core = encoded[4 if skip else 0 : len(encoded) - 4]
        out.add(core)
    return out


def scan(root, secrets):
    """``[(file, secret)]``: every one of ``secrets`` found in any form in any file under ``root``."""
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                data = f.read()
            found += [(os.path.relpath(path, root), s) for s in secrets if any(p in data for p in forms(s))]
    return found


@contextlib.contextmanager
def env(name, value):
    """Environment variable ``name`` set to ``value`` for the block."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old
