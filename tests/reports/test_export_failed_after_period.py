"""The reports' exports by user pair an export with its failure entry (``failed``, written
after it by the run that made it) and do not count it as taken. They looked inside the
report's period alone: an export at 23:59 on its last day whose failure was written at 00:00
of the next counted as a recording taken. Now the failures of the day after are read too;
what is after the period is never counted in it."""

from types import SimpleNamespace

from firmware.reports import compute
from firmware.storage.audit import AuditLog

S = 1_000_000
DAY = 86400 * S
T0 = 1_772_323_200_000_000  # 2026-03-01T00:00:00Z
MARCH = SimpleNamespace(start_us=T0, end_us=T0 + 31 * DAY)
APRIL = SimpleNamespace(start_us=MARCH.end_us, end_us=MARCH.end_us + 30 * DAY)


def exports(tmp_path, *entries):
    """The reports' exports (``{user: n}``) of March and of April in a trail of ``entries``:
    ``(actor, target, details, wall_us)`` of ``export``."""
    path = tmp_path / "audit.db"
    with AuditLog(path, tmp_path / "audit.head") as log:
        for actor, target, details, wall_us in entries:
            log.append(actor, "export", target, details, wall_us)
    return tuple(compute._access(str(path), period)["export"] for period in (MARCH, APRIL))


def test_an_export_at_the_end_of_the_period_whose_failure_is_written_after_it_is_not_taken(tmp_path):
    made = {"line": 1, "format": "wav", "reason": "complaint"}
    end = MARCH.end_us
    assert exports(
        tmp_path,
        ("sam", "1", made, end - 60 * S),  # 23:59 on 31 March
        ("sam", "1", dict(made, failed="the recording was not written: No space left"), end),  # 00:00
        ("sue", "2", made, end - 30 * S),  # taken: its failure never came
        ("sue", "2", made, end + 2 * DAY),  # April's, failed at once: counted in neither
        ("sue", "2", dict(made, failed="the download stopped"), end + 2 * DAY + S),
    ) == ({"sue": 1}, {})


def test_a_failure_the_day_after_is_paired_with_the_latest_export_before_it(tmp_path):
    """Read past the period's end, an export made after the end is paired as in the period:
    a failure is of the latest export before it with its details, so one made at 00:00:30
    and failed is April's, and March's export of the same call stays taken. Only a day
    after is read: a failure written later is no export's of March."""
    made = {"line": 1, "format": "ogg"}
    end = MARCH.end_us
    assert exports(
        tmp_path,
        ("sam", "1", made, end - 10 * S),
        ("sam", "1", made, end + 30 * S),
        ("sam", "1", dict(made, failed="the download stopped"), end + 40 * S),
        ("sam", "3", made, end - 5 * S),
        ("sam", "3", dict(made, failed="the download stopped"), end + 2 * DAY),
    ) == ({"sam": 2}, {})
