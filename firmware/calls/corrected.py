"""The caller's names corrected on request, read where they are kept (web.db).

The web UI corrects a call's caller name on request (UK GDPR Art. 16,
:mod:`web.corrections`) and keeps the corrections in web.db (``call_corrections``),
sealed as its notes are. The command line's calls list and the archive's call records
read them here, without the web UI: :func:`newest` from any open database,
:func:`corrected_names` from a data directory.
"""

import os
import sqlite3

from firmware.storage.fieldseal import opener
from firmware.storage.sealstores import CORRECTED_NAME

ERASED_NAME = ""  # a corrected name erased on request (a corrected name is never empty)


def newest(query, call_ids, cipher):
    """``{call_id: {"name", "by_user", "at_us", "request", "erased"}}``: the newest
    correction of each call in ``call_ids`` that has one, read through ``query`` (``(sql,
    args) -> rows`` of web.db) and opened with ``cipher`` (the call log's field cipher, or
    None on a box that does not seal); ``name`` is None for one erased since."""
    ids = [int(i) for i in call_ids]
    if not ids:
        return {}
    rows = query(
        "SELECT call_id, name, by_user, at_us, request FROM call_corrections WHERE id IN "
        "(SELECT max(id) FROM call_corrections WHERE call_id IN (%s) GROUP BY call_id)"
        % ",".join("?" * len(ids)),
        ids,
    )
    read = opener(cipher)
    return {
        r["call_id"]: dict(
            name=read(r["name"], CORRECTED_NAME) if r["name"] != ERASED_NAME else None,
            by_user=r["by_user"],
            at_us=r["at_us"],
            request=r["request"],
            erased=r["name"] == ERASED_NAME,
        )
        for r in rows
    }


def corrected_names(data_dir, call_ids, cipher):
    """``{call_id: name}``: the names the calls ``call_ids`` were corrected to on request
    (the newest; None for one erased since), read from ``DATA_DIR/web.db`` opened read-only
    (a reader changes nothing in it, on a full card too); {} on a box whose web UI never ran
    or never corrected a name.

    :raises firmware.storage.fieldseal.FieldSealError: a name does not open with ``cipher``
    """
    from firmware.datadir import connect_readonly

    path = os.path.join(os.fspath(data_dir), "web.db")
    ids = list(call_ids)
    if not ids or not os.path.exists(path):
        return {}
    conn = connect_readonly(path)
    try:
        conn.row_factory = sqlite3.Row
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'call_corrections'").fetchone() is None:
            return {}

        def query(sql, args):
            return conn.execute(sql, args).fetchall()

        found = {}
        for at in range(0, len(ids), 500):  # a statement's parameters stay few
            found.update(newest(query, ids[at : at + 500], cipher))
        return {call_id: c["name"] for call_id, c in found.items()}
    finally:
        conn.close()
