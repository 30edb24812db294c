"""A command's output file is named for what it is, as `sar`'s bundle is (.zip, or .zip.gpg
encrypted: tests/firmware/test_sar.py): `breach-scope` and `audit-export` wrote their CSV to
any name given, `report` and `year-review` theirs whatever --format said (a JSON report in
`report.pdf`), `config export` its JSON to a `.toml` its import then read as TOML, and
`export` audited a wrong name as a refusal after the password. Each refuses it in one line
naming the ending it takes, before anything is audited; nothing is written."""

import pytest

from firmware.box import open_audit

from support.cli import export_args, recorded_box, run_linekeeper

PASSWORD = "file names owner password 7"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, synth):
    """A box with one recorded call (and the signing key its recorder made)."""
    return recorded_box(tmp_path_factory.mktemp("names"), synth, PASSWORD)


def entries(data):
    with open_audit(data) as audit:
        return len(audit.entries(limit=10000))


def commands(data, pw, name):
    """Each command that writes a file, with ``name`` as its name: its arguments, the endings
    it takes and the words for what it writes."""
    return {
        "export": (export_args(data, 1, name, pw), ".wav or .ogg", "an export", "--out "),
        "report": (
            ("report", "--data-dir", data, "--password-file", pw, "--from", "2026-03-02", "--to",
             "2026-03-02", "--format", "csv", "--out", name),
            ".csv", "a CSV report (--format csv)", "--out ",
        ),
        "report pdf": (
            ("report", "--data-dir", data, "--password-file", pw, "--from", "2026-03-02", "--to",
             "2026-03-02", "--format", "pdf", "--out", name),
            ".pdf", "a PDF report (--format pdf)", "--out ",
        ),
        "year-review": (
            ("year-review", "--data-dir", data, "--password-file", pw, "--from", "2026-03-01", "--to",
             "2026-03-31", "--format", "json", "--out", name),
            ".json", "the year in review in JSON (--format json)", "--out ",
        ),
        "config export": (
            ("config", "export", name, "--data-dir", data),
            ".json", "a configuration export", "",
        ),
        "audit-export": (
            ("audit-export", name, "--data-dir", data, "--password-file", pw),
            ".csv", "a copy of the audit trail", "",
        ),
        "breach-scope": (
            ("breach-scope", "admin", name, "--from", "2026-03-01", "--to", "2026-03-31", "--data-dir", data,
             "--password-file", pw),
            ".csv", "a breach scope", "",
        ),
    }  # fmt: skip


WRONG = {
    "export": "call.csv",
    "report": "report.pdf",
    "report pdf": "report",
    "year-review": "review.pdf",
    "config export": "config.toml",
    "audit-export": "trail",
    "breach-scope": "scope.txt",
}
RIGHT = {
    "export": "call.WAV",
    "report": "report.csv",
    "report pdf": "report.pdf",
    "year-review": "review.json",
    "config export": "config.json",
    "audit-export": "trail.csv",
    "breach-scope": "scope.CSV",
}


@pytest.mark.parametrize("command", sorted(WRONG))
def test_a_name_that_does_not_say_what_the_file_is_is_refused(recorded, tmp_path, command):
    data, pw = recorded
    out = tmp_path / WRONG[command]
    args, endings, what, option = commands(data, pw, out)[command]
    before = entries(data)
    status, _, err = run_linekeeper(*args)
    assert status == 2
    assert err.splitlines() == [
        "linekeeper: %s%s: %s is a %s file; give a name ending %s — nothing was written"
        % (option, out, what, endings, endings)
    ]
    assert entries(data) == before and list(tmp_path.iterdir()) == []
    # The name it takes, in any case, is written.
    fresh = tmp_path / RIGHT[command]
    status, _, err = run_linekeeper(*commands(data, pw, fresh)[command][0])
    assert status == 0 and fresh.exists(), err
