"""Issue 11: the audit head anchored off the card.

Whoever holds the SD card can drop the append-only triggers, delete entries,
re-chain every hash and rewrite ``audit.head``: ``verify`` then says intact.
A head taken earlier and kept off the box (``verify --head SEQ:HASH``) shows
that the trail up to it was rewritten.
"""

import json
import sqlite3

import pytest

from firmware.calls.calllog import SCHEMA
from firmware.cli import main
from firmware.errors import AuditError
from firmware.storage.audit import GENESIS_HASH, AuditLog, canonical_json, entry_hash, parse_anchor

T_US = 1_772_442_000_000_000


@pytest.fixture
def data_dir(tmp_path):
    """A data dir with an empty call log as the box makes it (calls and recordings)."""
    from firmware.recording.store import RecordingStore

    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    db.close()
    RecordingStore(tmp_path).close()
    return tmp_path


def _log(data_dir):
    return AuditLog(data_dir / "audit.db", data_dir / "audit.head")


def _append(log, n, first=0):
    for i in range(first, first + n):
        log.append("sam", "playback", str(i), {"line": 1}, T_US + i)


def rewrite_as_card_holder(data_dir, drop_seqs):
    """Drop the triggers, delete entries, re-chain and rewrite the head (the attack)."""
    db = sqlite3.connect(data_dir / "audit.db", isolation_level=None)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    rows = db.execute(
        "SELECT seq, wall_us, actor, action, target, details FROM audit ORDER BY seq"
    ).fetchall()
    db.execute("DELETE FROM audit")
    prev, seq = GENESIS_HASH, 0
    for old_seq, wall_us, actor, action, target, details in rows:
        if old_seq in drop_seqs:
            continue
        seq += 1
        digest = entry_hash(prev, seq, wall_us, actor, action, target, json.loads(details))
        db.execute(
            "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, wall_us, actor, action, target, details, prev, digest),
        )
        prev = digest
    db.close()
    (data_dir / "audit.head").write_text(canonical_json({"seq": seq, "hash": prev}) + "\n")


def test_a_rewritten_trail_fails_against_an_earlier_head(data_dir, capsys):
    log = _log(data_dir)
    _append(log, 5)
    seq, digest = log.head()
    anchor = "%d:%s" % (seq, digest)
    _append(log, 3, first=5)
    assert log.verify(parse_anchor(anchor)) == []
    log.close()
    rewrite_as_card_holder(data_dir, drop_seqs={3})
    log = _log(data_dir)
    assert log.verify() == []  # what the card holder counts on
    problems = log.verify(parse_anchor(anchor))
    assert len(problems) == 1 and "no longer in the audit trail" in problems[0]
    assert "no longer in the audit trail" in log.verify(parse_anchor(digest))[0]
    log.close()
    assert main(["verify", "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
    assert main(["verify", "--data-dir", str(data_dir), "--head", anchor]) == 1
    assert "no longer in the audit trail" in capsys.readouterr().out


def test_what_an_earlier_head_cannot_show(data_dir):
    """Entries after the head taken can still be removed unseen: take heads often."""
    log = _log(data_dir)
    _append(log, 5)
    anchor = log.head()
    _append(log, 3, first=5)
    log.close()
    rewrite_as_card_holder(data_dir, drop_seqs={7})
    log = _log(data_dir)
    assert log.verify(anchor) == []
    log.close()


@pytest.mark.parametrize("text", ["", "abc", "x:" + "0" * 64, "5:" + "g" * 64])
def test_a_mistyped_head_is_refused(text):
    with pytest.raises(AuditError, match="SEQ:HASH"):
        parse_anchor(text)


def test_a_mistyped_head_on_the_command_line(data_dir, capsys):
    assert main(["verify", "--data-dir", str(data_dir), "--head", "12:abc"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
