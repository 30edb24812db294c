"""Data schema 1, "sealed stores": the personal data outside the call log and audit
trail is sealed with the box's field cipher (:mod:`firmware.storage.sealstores`):
``web.db``'s phonebook, notes and login throttle keys, the rules' number patterns in
``config.json`` and the mail queue.

A firmware of schema 0 cannot read these sealed: it refuses a ``config.json`` whose
rule patterns are sealed, shows sealed names and notes as ``lkp1:`` text and cannot
send a sealed mail. Being a numbered migration is what makes a rollback safe: before
this step the framework copies the data directory's top-level files, ``web.db`` and
``config.json`` among them, in clear to ``migration-backup/schema-0/``, and a
schema-0 release that an update rolls back to puts them back (docs/updates.md).

Two stores cannot wait for that restore: a schema-0 recorder reads ``config.json``
before it restores its backup (and would refuse to start), and the mail queue is a
folder the backup does not hold. So while the backup of schema 0 is kept (the update
not yet marked good, :func:`older_release_may_return`) the recorder leaves those two
in clear; it seals them when ``linekeeper update`` tells it the update is installed
(the backup dropped), or at its next start. The backup holds clear data until
``linekeeper update`` drops it at ``mark_good`` (docs/card-alone.md).

The sealing itself needs the storage key, which the HAT MCU's vault gives to the
recorder only once the data is at its schema and storage opens; so this step
defers to the recorder's sealing in the same start
(:func:`~firmware.storage.sealstores.seal_clear_stores`), which also runs at every
later start for whatever a process without the key wrote in clear. A box without the
MCU has no key and keeps the stores in clear; it is at schema 1 all the same.
"""

from firmware.migrations import backup_kept

SCHEMA = 1
# Left in clear while a release before this schema may still come back (see above).
DEFERRED = ("config_patterns", "mail")


def apply(data_dir):
    """Mark ``data_dir`` as sealed stores: nothing to change before storage opens (the
    recorder seals right after, with the key); the framework's backup, taken before
    this step, is the point."""
    del data_dir  # the sealing runs with the key, as storage opens (see the module's docstring)


def older_release_may_return(data_dir):
    """True while ``data_dir`` keeps a backup from before the sealed stores: the update
    to them is not confirmed, and a rollback would start a release that reads
    ``config.json`` and the mail queue only in clear."""
    return backup_kept(data_dir, below=SCHEMA)
