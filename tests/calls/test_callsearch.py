"""Call search: every filter, keyset pages, and the trigram index kept in step."""

import sqlite3

import pytest

from firmware.calls.calllog import SCHEMA
from firmware.calls.callsearch import CallFilter, CallSearch, Cursor, ensure_indexes

T0 = 1_700_000_000_000_000
S = 1_000_000


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "calls.db"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    rows = []
    for i in range(100):
        answered = T0 + i * 60 * S + 5 * S if i % 4 else None
        ended = (answered or T0 + i * 60 * S) + (i % 10) * 10 * S
        rows.append(
            (1 + i % 3, "in" if i % 2 else "out", T0 + i * 60 * S, answered, ended, 1, "0207946%04d" % i)
        )
    db.executemany(
        "INSERT INTO calls (line, direction, started_at, answered_at, ended_at,"
        " clock_synced, number) VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.commit()
    db.close()
    ensure_indexes(path)
    return path


def all_pages(search, flt, limit=7):
    out, cursor = [], None
    while True:
        calls, cursor = search.search(flt, after=cursor, limit=limit)
        out.extend(calls)
        if cursor is None:
            return out
        cursor = Cursor.decode(cursor.encode())


def test_pages_cover_everything_newest_first(db_path):
    calls = all_pages(CallSearch(db_path), CallFilter())
    assert [c["id"] for c in calls] == list(range(100, 0, -1))


@pytest.mark.parametrize(
    "flt, expect",
    [
        (CallFilter(lines=(2,)), lambda i: 1 + i % 3 == 2),
        (CallFilter(lines=()), lambda i: False),
        (CallFilter(direction="in"), lambda i: i % 2 == 1),
        (CallFilter(since_us=T0 + 10 * 60 * S, until_us=T0 + 20 * 60 * S), lambda i: 10 <= i < 20),
        (CallFilter(number="02079460"), lambda i: i < 100),
        (CallFilter(number="0207946001"), lambda i: 10 <= i < 20),
        (CallFilter(number="0042", number_match="contains"), lambda i: i == 42),
        (CallFilter(number="42", number_match="contains"), lambda i: i == 42),
        (CallFilter(min_duration_s=50), lambda i: i % 4 and i % 10 >= 5),
        (CallFilter(recorded=False), lambda i: True),
        (CallFilter(recorded=True), lambda i: False),
    ],
)
def test_filters(db_path, flt, expect):
    got = {c["id"] for c in all_pages(CallSearch(db_path), flt)}
    assert got == {i + 1 for i in range(100) if expect(i)}


def test_a_log_without_the_search_indexes_is_searched_too(tmp_path):
    """A call log no web UI has opened (``ensure_indexes`` not run), read by `linekeeper
    calls` read-only: its number prefix search walks the calls (it named an index that is
    not there: an error)."""
    path = tmp_path / "calls.db"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    for i, number in enumerate(("02079460001", "01632960002", "02079460003")):
        db.execute(
            "INSERT INTO calls (line, direction, started_at, clock_synced, number) VALUES (1, 'in', ?, 1, ?)",
            (T0 + i * S, number),
        )
    db.commit()
    db.close()
    found = all_pages(CallSearch(path), CallFilter(number="0207"))
    assert [c["id"] for c in found] == [3, 1]


def test_trigram_index_follows_the_call_log(db_path):
    db = sqlite3.connect(db_path)
    db.execute(
        "INSERT INTO calls (line, direction, started_at, clock_synced) VALUES (1, 'in', ?, 1)",
        (T0 + 10**9 * S,),
    )
    new_id = db.execute("SELECT max(id) FROM calls").fetchone()[0]
    db.execute("UPDATE calls SET number = '07700900123' WHERE id = ?", (new_id,))
    db.execute("UPDATE calls SET number = '99999' WHERE id = 5")
    db.execute("DELETE FROM calls WHERE id = 6")
    db.commit()
    search = CallSearch(db_path)
    assert [c["id"] for c in search.search(CallFilter(number="900123", number_match="contains"))[0]] == [
        new_id
    ]
    assert [c["id"] for c in search.search(CallFilter(number="999", number_match="contains"))[0]] == [5]
    assert search.search(CallFilter(number="9460005", number_match="contains"))[0] == []
    assert search.get(6) is None
    assert search.get(new_id)["number"] == "07700900123"


def test_bad_filters_and_cursors_are_refused():
    with pytest.raises(ValueError):
        CallFilter(number="0207'; --")
    with pytest.raises(ValueError):
        CallFilter(direction="sideways")
    with pytest.raises(ValueError):
        Cursor.decode("abc")


def test_ensure_indexes_is_idempotent(db_path):
    def schema():
        db = sqlite3.connect(db_path)
        try:
            return sorted(db.execute("SELECT type, name, sql FROM sqlite_master").fetchall(), key=repr)
        finally:
            db.close()

    first = schema()  # the fixture has run ensure_indexes once
    assert any(kind == "index" for kind, _, _ in first)
    assert any(name == "calls_number_fts" for _, name, _ in first)
    ensure_indexes(db_path)
    ensure_indexes(db_path)
    assert schema() == first  # nothing added, dropped or changed
    # ... and the number index was not filled twice: each call is still found once.
    calls = all_pages(CallSearch(db_path), CallFilter(number="0042", number_match="contains"))
    assert [c["number"] for c in calls] == ["02079460042"]


def test_recorded_follows_the_recordings_table(db_path):
    db = sqlite3.connect(db_path)
    db.execute(
        "CREATE TABLE recordings (id TEXT PRIMARY KEY, call_id INTEGER, state TEXT, started_at INTEGER)"
    )
    db.executemany(
        "INSERT INTO recordings VALUES (?, ?, ?, ?)",
        [
            ("a", 3, "complete", 1),
            ("b", 4, "partial", 1),
            ("c", 5, "deleted", 1),
            ("d", 6, "deleted", 1),
            ("e", 6, "complete", 2),
        ],
    )
    db.commit()
    db.close()
    search = CallSearch(db_path)
    recorded = all_pages(search, CallFilter(recorded=True))
    assert [c["id"] for c in recorded] == [6, 4, 3]
    assert [c["recording_state"] for c in recorded] == ["complete", "partial", "complete"]
    assert {c["id"] for c in all_pages(search, CallFilter(recorded=False))} == set(range(1, 101)) - {3, 4, 6}
    assert search.get(5)["recording_state"] == "deleted"


def _name(db_path, call_id, name):
    db = sqlite3.connect(db_path)
    db.execute("UPDATE calls SET name = ? WHERE id = ?", (name, call_id))
    db.commit()
    db.close()


@pytest.mark.parametrize(
    "flt,expected",
    [
        (CallFilter(), (100, True)),
        (CallFilter(lines=(1, 2, 3)), (100, True)),  # every line: left out
        (CallFilter(lines=(2,)), (33, True)),
        (CallFilter(direction="in", lines=(1, 2)), (34, True)),
        (CallFilter(number="42", number_match="contains"), (1, True)),
        (CallFilter(number="0207946", number_match="contains"), (100, True)),
    ],
)
def test_count(db_path, flt, expected):
    assert CallSearch(db_path).count(flt) == expected


def test_a_broad_search_counts_up_to_the_cap(db_path):
    assert CallSearch(db_path).count(CallFilter(number="0207", number_match="contains"), cap=10) == (
        10,
        False,
    )


def test_name_search_any_case_through_the_index_and_phonebook_numbers(db_path):
    _name(db_path, 5, "J SMITH")
    _name(db_path, 9, "Smithers Ltd")
    search = CallSearch(db_path)
    for part in ("smith", "SMI", "Smit"):
        calls, _ = search.search(CallFilter(name=part))
        assert [c["id"] for c in calls] == [9, 5], part
    assert search.count(CallFilter(name="smith")) == (2, True)
    calls, _ = search.search(CallFilter(name="sm"))  # too short for trigrams
    assert [c["id"] for c in calls] == [9, 5]
    calls, _ = search.search(CallFilter(name="acme", name_numbers=("02079460042",)))
    assert [c["id"] for c in calls] == [43]
    calls, _ = search.search(CallFilter(name="100%_"))
    assert calls == []


def test_a_corrected_call_is_found_by_its_corrected_name_alone(db_path):
    """``named_ids``: calls corrected to a name holding the part; ``renamed_ids``: every call
    corrected, which the caller-ID's and the phonebook's names no longer find."""
    _name(db_path, 5, "J SMITH")
    _name(db_path, 9, "Smithers Ltd")
    search = CallSearch(db_path)
    for part in ("smith", "sm"):  # through the trigram index, and without it
        flt = CallFilter(name=part, name_numbers=("02079460042",), named_ids=(20,), renamed_ids=(9, 20, 43))
        calls, _ = search.search(flt)
        assert [c["id"] for c in calls] == [20, 5], part
        assert search.count(flt) == (2, True)


def test_corrected_calls_must_be_call_ids():
    for bad in ([5], (0,), ("5",), (True,), (2.0,)):
        with pytest.raises(ValueError, match="named_ids must be a tuple of call ids"):
            CallFilter(name="x", named_ids=bad)
        with pytest.raises(ValueError, match="renamed_ids must be a tuple of call ids"):
            CallFilter(name="x", renamed_ids=bad)


def test_newer_pages_walk_back(db_path):
    search = CallSearch(db_path)
    first, cursor = search.search(CallFilter(), limit=10)
    second, _ = search.search(CallFilter(), after=cursor, limit=10)
    back, more = search.search(
        CallFilter(), before=Cursor(second[0]["started_us"], second[0]["id"]), limit=10
    )
    assert back == first and more is None
    back, more = search.search(
        CallFilter(), before=Cursor(second[5]["started_us"], second[5]["id"]), limit=10
    )
    assert [c["id"] for c in back] == list(range(95, 85, -1)) and more is not None


@pytest.mark.parametrize(
    "typed",
    [
        "+44 1632 960777",
        "01632 960777",
        "01632960777",
        "0044 1632 960777",
        "+44 (0)1632 960777",
        "44 1632 960777",
        "441632960777",
    ],
)
def test_number_forms_find_the_same_digits(typed):
    from firmware.calls.callsearch import search_number

    assert search_number(typed, "uk", "contains") == "1632960777"
    assert search_number(typed, "uk", "prefix") == "01632960777"


def test_another_countrys_number_is_found_as_the_log_holds_it():
    from firmware.calls.callsearch import search_number

    assert search_number("+353 1 234 5678", "uk", "contains") == "35312345678"
    assert search_number("+353 1 234 5678", "uk", "prefix") == "0035312345678"
    assert search_number("+33 1 23 45 67 89", "us", "prefix") == "011331234567 89".replace(" ", "")
    assert search_number("4416", "uk", "contains") == "4416"  # part of a number: as typed


def _names(db_path):
    db = sqlite3.connect(db_path)
    try:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    finally:
        db.close()


def test_a_box_that_seals_has_no_trigram_indexes(db_path):
    """Sealed numbers and names would fill them with sealed text no search uses, at a dozen
    pages of every call-log commit writing a number (docs/audit-writes.md)."""
    assert {"calls_number_fts", "calls_name_fts", "calls_number_fts_au"} <= _names(db_path)
    (db_path.parent / "storage.key").write_text("{}")  # the box seals (its storage key is here)
    ensure_indexes(db_path)
    names = _names(db_path)
    assert not [n for n in names if "_fts" in n]
    assert {"calls_search_started_number", "calls_search_number_started"} <= names
    # A number written now costs its row and the number indexes, and searches still work.
    db = sqlite3.connect(db_path)
    db.execute("UPDATE calls SET number = '01632960001' WHERE id = 5")
    db.commit()
    db.close()
    calls = all_pages(CallSearch(db_path), CallFilter(number="01632960001"))
    assert [c["id"] for c in calls] == [5]
    ensure_indexes(db_path, sealed=False)  # (and a box that does not seal has them again)
    assert {"calls_number_fts", "calls_name_fts"} <= _names(db_path)


def test_lines_of_names_each_held_call_s_line(db_path):
    """My line finds the line of a call an audit entry names without one (a release, an
    export from the command line); a call the log no longer holds is left out."""
    search = CallSearch(db_path)
    try:
        found = search.lines_of(["1", 2, 3, 4, 999, 4] + list(range(5, 101)))
    finally:
        search.close()
    assert found[1] == 1 and found[2] == 2 and found[3] == 3 and found[4] == 1
    assert len(found) == 100 and 999 not in found
    assert all(found[i] == 1 + (i - 1) % 3 for i in range(1, 101))


# (line, direction, number) of a day's calls: line 2 is a switchboard extension taking 9 for
# an outside line; line 1 takes none.
DIALLED = [
    (1, "out", "01632960123"),  # 1: as dialled
    (1, "out", "14101632960123"),  # 2: number withheld with 141
    (1, "out", "147001632960123"),  # 3: shown with 1470
    (1, "out", "#31#01632960123"),  # 4: withheld on a mobile (GSM)
    (1, "out", "1800101632960123"),  # 5: through Relay UK
    (1, "out", "1800201632960123"),  # 6: through Relay UK (text to voice)
    (1, "out", "1411800101632960123"),  # 7: both
    (2, "out", "901632960123"),  # 8: after line 2's outside-line digit
    (2, "out", "914101632960123"),  # 9: after it and 141
    (1, "out", "901632960123"),  # 10: line 1 has no outside-line digit: 9 is the number's
    (2, "in", "901632960123"),  # 11: a caller's number is not dialled after the digit
    (1, "out", "0201632960123"),  # 12: the digits inside another number
    (1, "out", "5501632960123"),  # 13: the same
    (1, "out", "14102079460000"),  # 14: another number withheld
    (2, "out", "902079460000"),  # 15: another number after the digit
]
FOUND_AFTER_PREFIXES = [9, 8, 7, 6, 5, 4, 3, 2, 1]


def _dialled_log(path, cipher=None):
    from firmware.calls.calllog import migrate

    db = sqlite3.connect(path, isolation_level=None)
    migrate(db)
    for i, (line, direction, number) in enumerate(DIALLED):
        number = number if cipher is None else cipher.seal(number, "number")
        db.execute(
            "INSERT INTO calls (line, direction, started_at, clock_synced, number) VALUES (?, ?, ?, 1, ?)",
            (line, direction, T0 + i * 60 * S, number),
        )
    db.close()
    ensure_indexes(path, sealed=cipher is not None)


@pytest.mark.parametrize("sealed", [False, True], ids=["clear", "sealed"])
@pytest.mark.parametrize("many", [False, True], ids=["by-index", "in-time-order"])
def test_a_prefix_search_finds_a_number_dialled_after_prefixes_and_the_outside_line_digit(
    tmp_path, monkeypatch, sealed, many
):
    """A supervisor looking for the calls to 01632 960123 found those dialled as
    141 01632 960123, 18001 01632 960123 or 9 01632 960123 (on a line taking 9 for an
    outside line) only with "contains": the readings a subject access search finds a call
    by (without the prefixes dialled before the number, and the line's outside-line digit
    on a number dialled) are now a "starts with" search's too, through the number index,
    in time order when matches are many, and for numbers sealed or clear alike."""
    import os

    from firmware.calls import callsearch
    from firmware.storage.fieldseal import FieldCipher

    cipher = FieldCipher(os.urandom(32)) if sealed else None
    path = tmp_path / "calls.db"
    _dialled_log(path, cipher)
    if many:  # every number search is served in time order
        monkeypatch.setattr(callsearch, "SELECTIVE_ROWS", 0)
        monkeypatch.setattr(callsearch, "SEALED_IN_MAX", 0)
    search = CallSearch(path, cipher)
    try:

        def found(**kw):
            flt = CallFilter(number_match="prefix", **kw)
            ids = [c["id"] for c in all_pages(search, flt, limit=4)]
            assert search.count(flt) == (len(ids), True), kw
            return ids

        assert found(number="01632960123", outside=((2, "9"),)) == FOUND_AFTER_PREFIXES
        assert found(number="01632", outside=((2, "9"),)) == FOUND_AFTER_PREFIXES
        # Without an outside-line digit set, 9 01632 960123 is a number of its own.
        assert found(number="01632960123") == [7, 6, 5, 4, 3, 2, 1]
        assert found(number="901632960123") == [11, 10, 8]
        # With the digit: still as dialled too (9123 may be an extension past the switchboard).
        assert found(number="901632960123", outside=((2, "9"),)) == [11, 10, 8]
        assert found(number="02079460000", outside=((2, "9"),)) == [15, 14]
        assert found(number="02079460000", outside=((1, "9"),)) == [14]
        # As dialled, a prefix search for the prefix still finds the calls dialled with it.
        assert found(number="141") == [14, 7, 2]
        # "Contains" is as it was: the digits anywhere in the number.
        contains = [
            c["id"] for c in all_pages(search, CallFilter(number="1632960123", number_match="contains"))
        ]
        assert contains == [13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    finally:
        search.close()


# (line, direction, number) of calls dialled after a chain of prefixes, any number of them
# (line 2 takes 9 for an outside line).
CHAINED = [
    (2, "out", "91411800108001234567"),  # 1: 9, 141, 18001
    (1, "out", "141180011800208001234567"),  # 2: three prefixes
    (1, "out", "14114108001234567"),  # 3: one prefix twice
    (1, "out", "#31#147014118001180020800123456"),  # 4: four prefixes
    (1, "out", "1411800101632960123"),  # 5: another number after two
    (1, "out", "141180010900123456"),  # 6: another number starting 0
]


@pytest.mark.parametrize("sealed", [False, True], ids=["clear", "sealed"])
@pytest.mark.parametrize("many", [False, True], ids=["by-index", "in-time-order"])
def test_a_prefix_search_looks_past_any_number_of_prefixes(tmp_path, monkeypatch, sealed, many):
    """On clear numbers "starts with" looked past at most two prefixes (after the
    outside-line digit), where sealed numbers and a subject access search look past any
    number of them (:func:`firmware.policy.rules.called_number`): 141 18001 18002 0800
    ..., or 9 and three prefixes, was not found by 0800, nor was 141 141 0800 ... (one
    prefix twice). Clear and sealed now find the same calls."""
    import os

    from firmware.calls import callsearch
    from firmware.calls.calllog import migrate
    from firmware.storage.fieldseal import FieldCipher

    cipher = FieldCipher(os.urandom(32)) if sealed else None
    path = tmp_path / "calls.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db)
    for i, (line, direction, number) in enumerate(CHAINED):
        db.execute(
            "INSERT INTO calls (line, direction, started_at, clock_synced, number) VALUES (?, ?, ?, 1, ?)",
            (line, direction, T0 + i * 60 * S, number if cipher is None else cipher.seal(number, "number")),
        )
    db.close()
    ensure_indexes(path, sealed=sealed)
    if many:
        monkeypatch.setattr(callsearch, "SELECTIVE_ROWS", 0)
        monkeypatch.setattr(callsearch, "SEALED_IN_MAX", 0)
    search = CallSearch(path, cipher)
    try:

        def found(number):
            flt = CallFilter(number=number, number_match="prefix", outside=((2, "9"),))
            ids = [c["id"] for c in all_pages(search, flt, limit=4)]
            assert search.count(flt) == (len(ids), True), number
            return ids

        assert found("0800") == [4, 3, 2, 1]
        assert found("08001234567") == [3, 2, 1]
        assert found("0") == [6, 5, 4, 3, 2, 1]
        assert found("01632") == [5]
        assert found("141") == [6, 5, 3, 2]  # as dialled, as ever
    finally:
        search.close()


def test_number_starts_reads_a_number_as_a_subject_access_search_does():
    from firmware.calls.callsearch import number_starts

    assert number_starts("14101632960123", "01632", "uk")
    assert number_starts("901632960123", "01632", "uk", outside="9")
    assert not number_starts("901632960123", "01632", "uk")
    assert not number_starts("5501632960123", "01632", "uk", outside="9")
    assert number_starts("*672125551234", "212555", "us")
    assert not number_starts("14101632960123", "01632", "us")  # 141 is the UK's


def test_a_bad_outside_line_digit_or_country_is_refused():
    with pytest.raises(ValueError, match="outside-line digit"):
        CallFilter(number="0163", outside=((2, "x"),))
    with pytest.raises(ValueError, match="outside-line digit"):
        CallFilter(number="0163", outside={2: "9"})
    with pytest.raises(ValueError, match="unknown country 'xx'"):
        CallFilter(number="0163", country="xx")
