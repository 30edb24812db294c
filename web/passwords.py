"""Password policy and password hashes for web accounts.

The one password policy of the box: the web UI, ``linekeeper init`` and
``linekeeper rekey`` ask :func:`password_problem`: at least 12 characters and
at most 256, no control character (a NUL, tab or newline), with both letters
and digits (PCI DSS v4.0 8.3.6: the box is sold to businesses that take card
payments by phone, and that rule wins over ASVS 5.0 §6.2 and NIST SP 800-63B,
which ask for no composition rules), not one of the common passwords
shipped in ``data/common-passwords.txt.gz`` (8 354 entries of 8 characters or
more from Royce Williams' breach-corpus list, as Django ships it), and not
derived from the user name ("weak4weak4" for user weak4). The comparisons ignore
case and surrounding spaces, so "Password1" is refused too. That a new password
is none of the account's last four is the accounts' check
(:meth:`web.accounts.Accounts.reused`, PCI DSS 8.3.7): it needs their hashes.

Hashes are Argon2id in the PHC string format through the ``cryptography``
package, which the box needs anyway for its recording keys: one less
dependency than argon2-cffi, and the same reference implementation
underneath. :data:`DEFAULT_COST` is the key slots' own cost (64 MiB, 3
passes): a web account's hash must not be the cheaper way to test a guess at
a password that also opens a key slot.
"""

import dataclasses
import functools
import gzip
import os
import unicodedata
from pathlib import Path

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from firmware.storage.keystore import DEFAULT_KDF

MIN_CHARS = 12
MAX_CHARS = 256
COMMON_LIST = Path(__file__).parent / "data" / "common-passwords.txt.gz"


@dataclasses.dataclass(frozen=True)
class HashCost:
    """Argon2id cost of new password hashes: ``memory_kib`` KiB, ``iterations`` passes.

    The default is the key slots' (:data:`firmware.storage.keystore.DEFAULT_KDF`).
    """

    memory_kib: int = DEFAULT_KDF.memory_kib
    iterations: int = DEFAULT_KDF.iterations


DEFAULT_COST = HashCost()
# Argon2 refuses memory below 8 KiB per lane; tests use this.
CHEAP_COST = HashCost(memory_kib=8, iterations=1)


@functools.lru_cache(maxsize=1)
def common_passwords():
    """The shipped common-password list, as a frozenset of lowercase strings."""
    with gzip.open(COMMON_LIST, "rt", encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip() and not line.startswith("#"))


def has_control(text):
    """True when ``text`` has a control character (Unicode category Cc: C0, DEL, C1)."""
    return any(unicodedata.category(c) == "Cc" for c in text)


def normalise(password):
    """NFKC, as ASVS asks, so the same password typed on two keyboards matches."""
    return unicodedata.normalize("NFKC", password)


def password_problem(password, user_name=None):
    """Why ``password`` is not acceptable, as a sentence for the person; None if it is."""
    if not isinstance(password, str) or not password:
        return "Enter a password."
    if has_control(password):
        # A NUL cuts the password short for C code, a newline ends it in a password file:
        # a password that works in one place and not another is locked out of a key slot.
        return (
            "The password has a control character (a NUL, tab, newline or the like): use "
            "letters, digits, spaces and symbols only."
        )
    if normalise(password) != unicodedata.normalize("NFC", password):
        # The account's hash takes NFKC, the key slot NFC (docs/FORMAT.md): with full-width
        # or other compatibility characters, the plain spelling opened one and not the
        # other, which the login took for an altered key slot.
        return (
            "Use ordinary letters, digits and symbols: the password has characters that "
            "another keyboard would type differently (full-width or ligature forms)."
        )
    password = normalise(password)
    # Counted without padding: "abc" and five spaces is three characters.
    if len(password.strip()) < MIN_CHARS:
        return "The password needs at least %d characters (it has %d)." % (MIN_CHARS, len(password.strip()))
    if len(password) > MAX_CHARS:
        return "The password can have at most %d characters." % MAX_CHARS
    if not any(c.isalpha() for c in password):
        return "The password needs letters as well as digits (it has no letter)."
    if not any(c.isdigit() for c in password):
        return "The password needs digits as well as letters (it has no digit)."
    folded = password.strip().lower()
    if folded in common_passwords():
        return (
            "That password is on a list of commonly used passwords that attackers try "
            "first. Choose another (a few unrelated words make a good one)."
        )
    if user_name and _derived_from(folded, user_name.strip().lower()):
        return "The password must not be made from the user name; choose something unrelated to it."
    return None


def _derived_from(folded, name):
    """True when, without the user name (or it backwards), too little of the password is left."""
    if not name:
        return False
    rest = folded
    for part in (name, name[::-1]):
        rest = rest.replace(part, "")
    if rest == folded:
        return False
    rest = "".join(c for c in rest if c.isalnum())
    return len(set(rest)) < 4 or rest in common_passwords()


def hash_password(password, cost=DEFAULT_COST):
    """The Argon2id PHC string of ``password`` (text)."""
    kdf = Argon2id(
        salt=os.urandom(16), length=32, iterations=cost.iterations, lanes=1, memory_cost=cost.memory_kib
    )
    return kdf.derive_phc_encoded(normalise(password).encode("utf-8"))


def check_password(password, phc):
    """True when ``password`` matches the PHC string ``phc``."""
    try:
        Argon2id.verify_phc_encoded(normalise(password).encode("utf-8"), phc)
        return True
    except (InvalidKey, ValueError):
        return False


def dummy_check(cost=DEFAULT_COST):
    """Spend the time of one check, for unknown user names (no timing oracle)."""
    check_password("not a password", _dummy_hash(cost))


@functools.lru_cache(maxsize=4)
def _dummy_hash(cost):
    return hash_password("dummy password", cost)
