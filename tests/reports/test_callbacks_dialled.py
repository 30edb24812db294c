"""The callback list knows a call back dialled with a prefix before the number."""

from firmware.reports.compute import _callbacks

MISSED = (1, 1, "in", 1_000, None, 2_000, "01632960123")


def _out(number, line=2, at=5_000):
    return (2, line, "out", at, None, at + 1_000, number)


def test_a_missed_number_called_back_with_its_number_withheld_is_off_the_list():
    assert _callbacks([MISSED, _out("14101632960123")], "uk", {1, 2}) == []
    assert _callbacks([MISSED, _out("1470 01632 960123")], "uk", {1, 2}) == []


def test_a_missed_number_called_back_from_a_pbx_extension_is_off_the_list():
    rows = [MISSED, _out("901632960123")]
    assert _callbacks(rows, "uk", {1, 2}, {2: "9"}) == []
    assert _callbacks(rows, "uk", {1, 2}, {2: "9", 1: "0"}) == []
    # Without the line's setting 901632960123 is a number of its own.
    assert [c["number"] for c in _callbacks(rows, "uk", {1, 2})] == ["01632960123"]
    # Only the line the call was made on has the digit.
    assert [c["number"] for c in _callbacks(rows, "uk", {1, 2}, {3: "9"})] == ["01632960123"]


def test_a_caller_whose_number_begins_as_a_prefix_is_still_missed():
    # The network's number is never taken for one dialled after a prefix.
    rows = [(1, 1, "in", 1_000, None, 2_000, "901632960123"), _out("01632960123")]
    assert [c["number"] for c in _callbacks(rows, "uk", {1, 2}, {1: "9"})] == ["901632960123"]


def test_a_report_reads_the_lines_outside_line_digits_from_config_json(tmp_path):
    from firmware.config import BoxConfig, save_config
    from firmware.reports.source import ReportSource

    source = ReportSource(tmp_path)
    assert source.outside_lines() == {}  # no config.json: numbers are taken as dialled
    doc = {"policy": {"rules": {"lines": [{"line": 2, "mode": "always", "outside_line": "9"}]}}}
    save_config(str(tmp_path), BoxConfig.from_dict(doc))
    assert source.outside_lines() == {2: "9"}
    (tmp_path / "config.json").write_text("{")  # unreadable: taken as dialled, no report refused
    assert source.outside_lines() == {}


def test_each_entry_names_its_last_missed_call():
    """A report's audit entry names the callback list's calls (a breach's scope reads their
    numbers from the call log): each entry's last missed call."""
    rows = [
        MISSED,
        (3, 2, "in", 3_000, None, 4_000, "+441632960123"),
        (4, 1, "in", 3_500, None, 4_500, "0207"),
    ]
    got = {c["number"]: c["last_missed_call"] for c in _callbacks(rows, "uk", {1, 2})}
    assert got == {"+441632960123": 3, "0207": 4}
