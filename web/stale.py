"""A settings form sent from a page older than the settings it edits.

A settings page's form sends every field, those not touched too. Two installers with
the same page open: the one who saves second sent, unknowingly, what the page showed
before the first one's change, and undid it (a line made private recorded again, an
excluded number's list gone) with nothing said. So the page carries a fingerprint of
the saved settings it shows (field ``based_on``), and a save whose fingerprint is not
that of the settings saved now is refused whole: the page is shown again as saved, for
the change to be made again on it.

A form without the field (a script, not a page of this box) is not checked.
"""

import hashlib
import hmac
import json

FIELD = "based_on"

CHANGED = (
    "Nothing was saved: these settings were saved by someone else after this page was "
    "loaded, and sending it would have undone their change. The page now shows the "
    "settings as saved; make your change again."
)


def fingerprint(value):
    """A short fingerprint of ``value`` (JSON-able: dataclasses as dicts, tuples as lists)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def changed_since(form, now):
    """Whether ``form`` was sent from a page showing other settings than those whose
    :func:`fingerprint` is ``now``."""
    seen = form.get(FIELD)
    if seen is None:
        return False
    return not hmac.compare_digest(seen.encode("utf-8", "replace"), now.encode("ascii"))
