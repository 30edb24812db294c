"""Password policy and password hashes for web accounts.

Policy (OWASP ASVS 5.0 §6.2, NIST SP 800-63B): at least 8 characters, at most
256, no composition rules, and not one of the common passwords shipped in
``data/common-passwords.txt.gz`` (8 354 entries of 8 characters or more from
Royce Williams' breach-corpus list, as Django ships it). The comparison
ignores case and surrounding spaces, so "Password1" is refused too.

Hashes are Argon2id in the PHC string format through the ``cryptography``
package, which the box needs anyway for its recording keys: one less
dependency than argon2-cffi, and the same reference implementation
underneath. :data:`DEFAULT_COST` is OWASP's first recommended setting
(19 MiB, 2 passes, 1 lane): a login also unlocks the user's key slot, which
has its own (heavier) Argon2id, so this one stays light.
"""

import dataclasses
import functools
import gzip
import os
import unicodedata
from pathlib import Path

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

MIN_CHARS = 8
MAX_CHARS = 256
COMMON_LIST = Path(__file__).parent / "data" / "common-passwords.txt.gz"


@dataclasses.dataclass(frozen=True)
class HashCost:
    """Argon2id cost of new password hashes: ``memory_kib`` KiB, ``iterations`` passes."""

    memory_kib: int = 19456
    iterations: int = 2


DEFAULT_COST = HashCost()
# Argon2 refuses memory below 8 KiB per lane; tests use this.
CHEAP_COST = HashCost(memory_kib=8, iterations=1)


@functools.lru_cache(maxsize=1)
def common_passwords():
    """The shipped common-password list, as a frozenset of lowercase strings."""
    with gzip.open(COMMON_LIST, "rt", encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip() and not line.startswith("#"))


def normalise(password):
    """NFKC, as ASVS asks, so the same password typed on two keyboards matches."""
    return unicodedata.normalize("NFKC", password)


def password_problem(password, user_name=None):
    """Why ``password`` is not acceptable, as a sentence for the person; None if it is."""
    if not isinstance(password, str) or not password:
        return "Enter a password."
    password = normalise(password)
    if len(password) < MIN_CHARS:
        return "The password needs at least %d characters (it has %d)." % (MIN_CHARS, len(password))
    if len(password) > MAX_CHARS:
        return "The password can have at most %d characters." % MAX_CHARS
    folded = password.strip().lower()
    if folded in common_passwords():
        return ("That password is on a list of commonly used passwords that attackers try "
                "first. Choose another (a few unrelated words make a good one).")
    if user_name and folded == user_name.strip().lower():
        return "The password must not be the user name."
    return None


def hash_password(password, cost=DEFAULT_COST):
    """The Argon2id PHC string of ``password`` (text)."""
    kdf = Argon2id(salt=os.urandom(16), length=32, iterations=cost.iterations, lanes=1,
                   memory_cost=cost.memory_kib)
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
