"""Scanning a copy of the SD card for personal data and keys, in every form they may hide as."""

import base64
import contextlib
import os
import re


def forms(text):
    """The byte strings ``text`` may hide as: raw, hex, base64 at each alignment, UTF-16
    (``text`` may be bytes, a key's: raw, hex and base64 then)."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8")
    out = {raw, raw.hex().encode(), raw.hex().upper().encode()}
    if not isinstance(text, bytes):
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


def private_key_forms(key):
    """What a clear copy of the EC private key ``key`` holds whatever its format: its
    private value's bytes (in DER, raw, hex, base64), and the lines of its clear PKCS#8
    PEM (base64 in lines of 64, which a scan of :func:`forms` would miss across a break;
    each of them holds some of the private value)."""
    from cryptography.hazmat.primitives import serialization

    value = key.private_numbers().private_value.to_bytes((key.curve.key_size + 7) // 8, "big")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return [value] + [line for line in pem.splitlines()[1:-1] if len(line) == 64]


def clear_private_keys(root, keys=()):
    """``[file]``: the files under ``root`` holding a private key in clear: a PEM private key
    block that is not encrypted, or any of :func:`private_key_forms` of ``keys``."""
    pems = re.compile(rb"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----")
    secrets = [form for key in keys for form in private_key_forms(key)]
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                data = f.read()
            clear = any(b"ENCRYPTED" not in m.group(1) for m in pems.finditer(data))
            if clear or any(p in data for s in secrets for p in forms(s)):
                found.append(os.path.relpath(path, root))
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
