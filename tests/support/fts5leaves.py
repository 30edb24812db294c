"""What an FTS5 index still holds on disk, deleted or not: the postings of every leaf of
every segment of ``TABLE_data``, read from the blocks themselves.

An FTS5 table does not remove a deleted row's postings: it writes a delete marker in a
new segment and leaves the old ones as they were until segments merge. A search no
longer finds the row, but its terms (here trigrams, from which the text can be spelled
again) are still in the file. Tests of erasure read the blocks with this, not searches.
The format: sqlite.org/fts5.html, "Appendix B: FTS5 shadow tables" and fts5_index.c.
"""


def _varint(b, i):
    v = 0
    for _ in range(8):
        c = b[i]
        i += 1
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            return v, i
    return (v << 8) | b[i], i + 1


def _leaves(db, table):
    for rid, block in db.execute("SELECT id, block FROM %s_data WHERE id > 10" % table):
        if (rid >> 31) & 0x3F:  # a b-tree or doclist-index page, not a leaf
            continue
        yield bytes(block)


def postings(db, table):
    """``[(term, rowid, deleted)]`` in the leaves of ``table``'s index (an open sqlite3
    connection ``db``)."""
    out = []
    for b in _leaves(db, table):
        size = int.from_bytes(b[2:4], "big")
        offsets, i, o = [], size, 0
        while i < len(b):  # the page footer: where each term starts
            d, i = _varint(b, i)
            o += d
            offsets.append(o)
        term = b""
        for n, start in enumerate(offsets):
            end = offsets[n + 1] if n + 1 < len(offsets) else size
            i = start
            if n == 0:
                k, i = _varint(b, i)
                term = b[i : i + k]
                i += k
            else:
                keep, i = _varint(b, i)
                k, i = _varint(b, i)
                term = term[:keep] + b[i : i + k]
                i += k
            rowid, first = 0, True
            while i < end:
                d, i = _varint(b, i)
                rowid = d if first else rowid + d
                first = False
                flags, i = _varint(b, i)
                i += flags >> 1  # the positions
                out.append((term[1:].decode("utf-8", "replace"), rowid, bool(flags & 1)))
    return out


def rows(db, table):
    """The rowids with any posting left in ``table``'s leaves, deleted or not."""
    return {rowid for _, rowid, _ in postings(db, table)}
