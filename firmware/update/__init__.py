"""Field updates: RAUC bundles into A/B application slots, switched when every line is idle.

:mod:`.rauc` drives RAUC (its ``rauc`` command, which talks to ``rauc service``
over D-Bus); :mod:`.slots` points the firmware's ``current`` link at a slot;
:mod:`.health` checks a freshly started box; :mod:`.flow` is the whole update,
from copying the bundle to ``mark-good`` or the rollback, and its report.
See docs/updates.md.
"""
