"""The register of data subjects' requests under storage limitation: a closed request is kept
``requests_closed_days`` after it was closed, then the retention sweep deletes it (row and
sealed fields, nothing left in the file or its WAL), audited without the person; an open
request never goes, a request naming a call on legal hold stays while the hold does."""

import datetime as dt
import os
import sqlite3

import pytest

from firmware.errors import ConfigError
from firmware.policy.retention import RetentionSettings
from firmware.policy.sweeper import RetentionSweeper
from firmware.rights import ANSWERED, REFUSED, RightsRegister
from firmware.rightsretention import RegisterRetention

from support.cardscan import scan

D = dt.date
TODAY = D(2026, 3, 2)  # the shelf's clock


def _log(reg, name, received, closed=None, status=ANSWERED, call_ids=()):
    rid = reg.add(
        actor="sam",
        kind="access",
        received=received,
        requester=name,
        contact=name.lower().replace(" ", ".") + "@example.org",
        numbers="01632 960555",
        details="a copy of my calls",
        today=received,
        wall_us=1,
    )
    if closed is not None:
        reg.close_request(
            rid, status=status, on=closed, outcome="sent", today=closed, wall_us=2, call_ids=call_ids
        )
    return rid


@pytest.fixture
def swept(shelf):
    """The shelf's sweeper with the register's part, as the box builds it."""
    sweeper = RetentionSweeper(
        shelf.store,
        shelf.clock,
        shelf.audit,
        RetentionSettings(),
        requests=RegisterRetention(shelf.data_dir, held_calls=shelf.meta.held_calls),
    )
    sweeper.guard.passed(shelf.clock.wall_us())
    yield sweeper
    sweeper.close()


def _ids(shelf):
    reg = RightsRegister(shelf.data_dir)
    try:
        return sorted(e["id"] for e in reg.entries())
    finally:
        reg.close()


def test_closed_requests_past_six_years_go_open_ones_never(shelf, swept):
    held_call = shelf.add_call(10, hold=True)
    reg = RightsRegister(shelf.data_dir)
    old = _log(reg, "Ada Oldanswer", D(2019, 6, 3), D(2019, 6, 20))
    refused = _log(reg, "Bea Oldrefusal", D(2019, 7, 1), D(2019, 7, 5), status=REFUSED)
    edge = _log(reg, "Cy Edgeday", D(2020, 2, 10), D(2020, 3, 1))  # 2192 days ago: kept to today
    recent = _log(reg, "Di Recent", D(2025, 1, 6), D(2025, 1, 10))
    never_closed = _log(reg, "Ed Stillopen", D(2019, 6, 3))
    held = _log(reg, "Flo Dispute", D(2019, 6, 3), D(2019, 6, 10), call_ids=[held_call])
    # Still open (as the web UI's may be): what it wrote is in the WAL, not yet in rights.db.
    result = swept.sweep()
    # secure_delete and the WAL truncated: no byte of them left anywhere in the data.
    assert scan(shelf.data_dir, ["Ada Oldanswer", "ada.oldanswer", "Bea Oldrefusal"]) == []
    assert scan(shelf.data_dir, ["Di Recent"]) != []  # (the scan does find what is there)
    reg.close()
    assert (result.requests_deleted, result.requests_held) == (2, 1)
    assert _ids(shelf) == sorted([edge, recent, never_closed, held])
    # Audited one by one, before they went: the number, kind, state and dates, not the person.
    gone = [
        e
        for e in shelf.audit.entries(limit=100, newest_first=False)
        if e.action == "data_request" and e.details.get("event") == "deleted"
    ]
    assert [e.target for e in gone] == ["request:%d" % old, "request:%d" % refused]
    assert gone[0].details == {
        "event": "deleted",
        "rule": "register retention",
        "kept_days": 2192,
        "kind": "access",
        "status": "answered",
        "received": "2019-06-03",
        "closed_on": "2019-06-20",
    }
    [sweep] = shelf.sweeps()
    assert sweep.details["requests_deleted"] == 2 and sweep.details["requests_held"] == 1
    # The hold released, the request it kept goes at the next sweep; the edge one a day on.
    shelf.meta.set_legal_hold(held_call, False, "sam", shelf.clock.wall_us())
    shelf.advance(86_400)
    assert swept.sweep().requests_deleted == 2
    assert _ids(shelf) == sorted([recent, never_closed])


def test_the_period_is_the_setting_and_a_clock_not_trusted_deletes_nothing(shelf, swept):
    reg = RightsRegister(shelf.data_dir)
    rid = _log(reg, "Gil Lastyear", D(2024, 12, 2), D(2025, 1, 6))
    reg.close()
    assert swept.sweep().requests_deleted == 0
    swept.update_settings(RetentionSettings(requests_closed_days=365))
    shelf.jump(3 * 365 * 86_400)  # a clock gone to 2029: a jump, refused
    result = swept.sweep()
    assert result.refused and result.requests_deleted == 0 and _ids(shelf) == [rid]
    shelf.jump(-3 * 365 * 86_400)
    swept.confirm_clock("ivan")
    assert swept.sweep().requests_deleted == 1 and _ids(shelf) == []


def test_a_box_with_no_register_sweeps_as_before(shelf, swept):
    result = swept.sweep()
    assert result.refused is None and result.requests_deleted == 0
    assert not os.path.exists(os.path.join(shelf.data_dir, "rights.db"))


def test_the_setting_is_validated_and_written_only_when_changed():
    assert RetentionSettings().requests_closed_days == 2192
    # An older release (an update rolled back) rejects a setting it does not know.
    assert "requests_closed_days" not in RetentionSettings().to_dict()
    changed = RetentionSettings.from_dict({"requests_closed_days": 3000})
    assert changed.to_dict()["requests_closed_days"] == 3000
    assert RetentionSettings.from_dict(changed.to_dict()) == changed
    for bad in (364, 36_501, None, "2192", True):
        with pytest.raises(ConfigError) as err:
            RetentionSettings.from_dict({"requests_closed_days": bad})
        assert err.value.field == "policy.retention.requests_closed_days"


def test_a_request_and_its_follow_ups_go_together(shelf, swept):
    """The answer a follow-up complains of stays as long as the follow-up does."""
    reg = RightsRegister(shelf.data_dir)
    first = _log(reg, "Hal Chain", D(2019, 6, 3), D(2019, 6, 20))
    follow = reg.add(
        actor="sam",
        kind="access",
        received=D(2019, 7, 1),
        requester="Hal Chain",
        contact="hal@example.org",
        numbers="",
        details="a call is missing",
        today=D(2019, 7, 1),
        wall_us=3,
        follows=first,
    )
    reg.close()
    assert swept.sweep().requests_deleted == 0 and _ids(shelf) == [first, follow]  # the follow-up is open
    reg = RightsRegister(shelf.data_dir)
    reg.close_request(
        follow, status=ANSWERED, on=D(2020, 3, 1), outcome="sent", today=D(2020, 3, 1), wall_us=4
    )
    reg.close()
    shelf.advance(3600)
    assert swept.sweep().requests_deleted == 0  # closed, but 2192 days ago only today
    shelf.advance(86_400)
    assert swept.sweep().requests_deleted == 2 and _ids(shelf) == []


class _LockedRegister:
    """A register the card or another process will not let go (``database is locked``)."""

    def preview(self, wall_us, days):
        return [], []

    def expire(self, wall_us, days, audit):
        raise sqlite3.OperationalError("database is locked")


def test_a_register_that_cannot_be_swept_does_not_leave_the_recordings_sweep_unaudited(shelf):
    # The recordings past their period are deleted first; a register the sweep then cannot
    # open (locked by the web UI past its wait, a damaged rights.db) must not stop the sweep's
    # own entry, with the deletion log's head, nor the clock guard's note: else every sweep
    # deletes recordings the trail never anchors.
    old = shelf.add_call(400)
    sweeper = RetentionSweeper(
        shelf.store,
        shelf.clock,
        shelf.audit,
        RetentionSettings.from_dict({"default_days": 365}),
        requests=_LockedRegister(),
    )
    sweeper.guard.passed(shelf.clock.wall_us())
    try:
        result = sweeper.sweep()
    finally:
        sweeper.close()
    assert old not in shelf.recorded() and result.deleted == 1
    [entry] = shelf.sweeps()
    assert entry.details["deleted"] == 1
    assert "database is locked" in entry.details["requests_error"]


def test_a_request_goes_with_the_old_and_new_values_of_its_corrections(shelf, swept):
    """Who asked, how to reach them and their numbers, corrected while the request was open, are
    kept with it as they were and became (RightsRegister.correct): deleted with it, nothing left
    in the file."""
    reg = RightsRegister(shelf.data_dir)
    old = reg.add(
        actor="sam",
        kind="access",
        received=D(2019, 6, 3),
        requester="Gus Mistyped",
        contact="gus@example.org",
        numbers="01632 960111",
        details="a copy of my calls",
        today=D(2019, 6, 3),
        wall_us=1,
    )
    reg.correct(old, field="requester", value="Gus Corrected", wall_us=2)
    reg.correct(old, field="numbers", value="01632 960222", wall_us=3)
    reg.correct(old, field="contact", value="gus@moved.example.org", wall_us=3)
    reg.close_request(
        old, status=ANSWERED, on=D(2019, 6, 20), outcome="sent", today=D(2019, 6, 20), wall_us=4
    )
    kept = _log(reg, "Di Recent", D(2025, 1, 6))
    reg.correct(kept, field="requester", value="Di Recentcorrected", wall_us=5)
    reg.close()
    assert swept.sweep().requests_deleted == 1
    gone = [
        "Gus Mistyped",
        "Gus Corrected",
        "01632 960111",
        "01632 960222",
        "gus@example.org",
        "gus@moved.example.org",
    ]
    assert scan(shelf.data_dir, gone) == []
    reg = RightsRegister(shelf.data_dir)
    try:
        assert [c[1:] for c in reg.corrections(kept).values()] == [("Di Recent", "Di Recentcorrected")]
        assert reg.corrections(old) == {}
    finally:
        reg.close()
