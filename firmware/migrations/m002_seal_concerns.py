"""Data schema 2, "sealed concerns": the words of a concern staff raise (an alarm of kind
``staff_concern`` in ``alarms.db``, which may name a caller) are sealed with the box's field
cipher (:func:`firmware.storage.sealstores.seal_alarm_history`), as notes on calls are.

A firmware of schema 1 reads ``alarms.db``'s messages as they are and would show a sealed
concern as ``lkp1:`` text. Being a numbered migration is what keeps a rollback readable:
before this step the framework copies the data directory's top-level files, ``alarms.db``
among them, in clear to ``migration-backup/schema-1/``, and a schema-1 release that an
update rolls back to puts them back (docs/updates.md).

As for schema 1, the sealing needs the storage key, which the recorder has only once
storage opens: this step changes nothing, and the recorder's sealing in the same start
(:func:`~firmware.storage.sealstores.seal_clear_stores`) does the work, and again at every
later start for whatever a process without the key left in clear.
"""

SCHEMA = 2


def apply(data_dir):
    """Mark ``data_dir`` as sealed concerns: the framework's backup, taken before this
    step, is the point; the recorder seals right after, with the key."""
    del data_dir
