"""web.db, the rules and the mail queue on a box that seals (docs/card-alone.md).

The pages work as before — the phonebook names callers and is searched by
name, notes show, the rules page edits number rules, queued mail goes out —
while web.db, config.json and the queue's files hold none of the numbers,
names or note texts in any form the card scan looks for.
"""

import csv
import io
import os
import sqlite3
from email.message import EmailMessage

import pytest

from firmware.config import load_config
from firmware.policy.rules import RECORD, SKIP, decide
from firmware.storage.fieldseal import FieldCipher

from support.cardscan import scan
from support.web import T0_US, S, ids, page, rules_form

NUMBER = "01632960600"
NUMBER_INTL = "+441632960600"
BOOK_NAME = "Acme Supplies of Wexbridge"
NOTE = "Mrs Delacroix-Ferreira says the boiler at 14 Larch Way leaks"
RULE_NUMBER = "07700 900123"


def add_call(box, started_us, number):
    db = sqlite3.connect(box.data_dir + "/calls.db")
    cur = db.execute(
        "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, clock_synced, number) "
        "VALUES (1, 'in', ?, ?, ?, 1, ?)",
        (started_us, started_us + 5 * S, started_us + 65 * S, number),
    )
    db.commit()
    db.close()
    return cur.lastrowid


@pytest.fixture
def sealed(tmp_path, people_template):
    box, people = people_template.box(tmp_path, cipher=FieldCipher(os.urandom(32)))
    yield box, people
    box.close()


def scan_data(box, secrets):
    """The secrets found anywhere in the data directory but calls.db (the harness's
    own call log, which these tests write in clear) and the audit trail."""
    return [
        (f, s)
        for f, s in scan(box.data_dir, secrets)
        if not f.startswith(("calls.db", "audit.db", "recordings"))
    ]


def test_phonebook_and_notes_work_and_web_db_holds_them_only_sealed(sealed):
    box, people = sealed
    sam = people["sam"]
    call_id = add_call(box, T0_US + 3100 * S, NUMBER)
    resp = box.post(sam, "/phonebook", {"number": "01632 960600", "name": BOOK_NAME}, token_from="/phonebook")
    assert resp.status_code == 302
    resp = box.post(sam, "/calls/%d/notes" % call_id, {"note": NOTE}, token_from="/calls/%d" % call_id)
    assert resp.status_code == 302
    # Looked up by number (the keyed index), searched by name, listed, exported.
    detail = page(sam, "/calls/%d" % call_id)
    assert "(%s, phonebook)" % BOOK_NAME in detail and NOTE in detail
    assert ids(page(sam, "/calls?name=wexbridge")) == [call_id]
    assert BOOK_NAME in page(sam, "/phonebook")
    out = sam.get("/phonebook/phonebook.csv").get_data(as_text=True)
    assert ["+441632960600", BOOK_NAME] in list(csv.reader(io.StringIO(out)))
    # Renaming one entry keeps one entry; removing it removes it.
    box.post(sam, "/phonebook", {"number": "+44 1632 960600", "name": "Acme"}, token_from="/phonebook")
    assert [e["name"] for e in box.web.phonebook.entries()] == ["Acme"]
    box.post(sam, "/phonebook", {"number": "01632 960600", "name": BOOK_NAME}, token_from="/phonebook")
    # web.db itself: only sealed text.
    db = sqlite3.connect(os.path.join(box.data_dir, "web.db"))
    (number, name) = db.execute("SELECT number, name FROM phonebook").fetchone()
    (note,) = db.execute("SELECT note FROM call_notes").fetchone()
    db.close()
    assert all(v.startswith("lkp1:") for v in (number, name, note))
    box.web.db._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert scan_data(box, [NUMBER, NUMBER_INTL, BOOK_NAME, NOTE]) == []
    # The scan is real: the same box without a cipher leaves them in web.db.
    box.web.phonebook = type(box.web.phonebook)(box.web.db, box.services.wall_us, None)
    box.web.phonebook.put("01632960999", "Clear Name Ltd", "uk")
    box.web.db._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert ("web.db", "Clear Name Ltd") in scan_data(box, ["Clear Name Ltd"])


def test_phonebook_import_and_refusals_change_nothing(sealed):
    box, people = sealed
    sam = people["sam"]
    token = box.token_of(sam, "/phonebook")
    good = "number,name\n01632960001,Alpha\n+44 1632 960002,Beta\n"
    resp = sam.post(
        "/phonebook/import", data={"csrf_token": token, "file": (io.BytesIO(good.encode()), "pb.csv")}
    )
    assert resp.status_code == 302
    # The same numbers again (other forms) rename, never duplicate.
    again = "number,name\n+441632960001,Alpha Two\n"
    sam.post("/phonebook/import", data={"csrf_token": token, "file": (io.BytesIO(again.encode()), "pb.csv")})
    assert [(e["number"], e["name"]) for e in box.web.phonebook.entries()] == [
        ("+441632960001", "Alpha Two"),
        ("+441632960002", "Beta"),
    ]
    before = box.web.phonebook.entries()
    # Sealed text typed in is refused whole: it would read back as a value that does not open.
    entry = {"number": "01632960003", "name": "lkp1:AAAA"}
    resp = box.post(sam, "/phonebook", entry, token_from="/phonebook")
    assert resp.status_code == 400 and "cannot start with" in resp.get_data(as_text=True)
    resp = box.post(sam, "/calls/1/notes", {"note": "lkp1:AAAA"}, token_from="/calls/1")
    assert resp.status_code == 400 and "cannot start with" in resp.get_data(as_text=True)
    assert box.web.phonebook.entries() == before and box.web.notes.of_call(1) == []


def test_the_rules_page_keeps_number_rules_sealed_in_config_json(sealed):
    box, people = sealed
    ivan = people["ivan"]
    resp = rules_form(
        box,
        ivan,
        **{
            "line-1-mode": "by_rule",
            "numbers-0-name": "private mobile",
            "numbers-0-action": "exclude",
            "numbers-0-patterns": RULE_NUMBER + ", 0800*",
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    with open(os.path.join(box.data_dir, "config.json"), "rb") as f:
        text = f.read()
    assert b"lkp1:" in text and b"0800*" not in text
    assert scan_data(box, [RULE_NUMBER, RULE_NUMBER.replace(" ", "")]) == []
    # The page and the running box see the patterns; the rule matches.
    assert 'value="%s, 0800*"' % RULE_NUMBER in ivan.get("/rules").get_data(as_text=True)
    rules = box.config_store.get().policy.rules
    assert rules.numbers[0].patterns == (RULE_NUMBER, "0800*")
    assert box.applied[-1].policy.rules == rules
    assert decide(rules, 1, "in", "07700900123", T0_US).decision == SKIP
    assert decide(rules, 1, "in", "01632960123", T0_US).decision == RECORD
    # Read without the key the patterns stay sealed and no call on a number rule is recorded.
    locked = load_config(box.data_dir).policy.rules
    assert locked.numbers[0].patterns[0].startswith("lkp1:")
    assert decide(locked, 1, "in", "01632960123", T0_US).decision == SKIP
    # Sealed text typed as a pattern is refused, and nothing changes.
    resp = rules_form(
        box,
        ivan,
        **{"numbers-0-name": "x", "numbers-0-action": "exclude", "numbers-0-patterns": "lkp1:AAAA"},
    )
    assert resp.status_code == 400
    assert box.config_store.get().policy.rules == rules


def test_queued_mail_is_sealed_on_the_card_and_sent_as_it_was(sealed):
    box, people = sealed
    queue = box.services.mail.queue
    msg = EmailMessage()
    msg["Subject"] = "Missed call from %s" % NUMBER
    msg["From"] = "box@example.org"
    msg["To"] = "office@example.org"
    msg.set_content("%s (%s) rang: %s" % (BOOK_NAME, NUMBER, NOTE))
    queue.enqueue(msg)
    assert scan_data(box, [NUMBER, BOOK_NAME, NOTE]) == []
    assert [p["subject"] for p in queue.pending()] == ["Missed call from %s" % NUMBER]
    assert "Missed call from %s" % NUMBER in page(people["alice"], "/settings/mail")

    class Failing:
        def send(self, message):
            from firmware.mail.smtp import MailError

            raise MailError("550 no such user office@example.org for %s" % NUMBER)

    assert queue.flush(Failing()) == (0, 1)
    assert scan_data(box, [NUMBER]) == []  # the last error is sealed too
    assert NUMBER in queue.pending()[0]["last_error"]
    sent = []

    class Sender:
        def send(self, message):
            sent.append(message)

    box.clock.advance(3600)
    queue.wall_us = lambda: T0_US + 10 * 86400 * S
    assert queue.flush(Sender()) == (1, 0)
    assert sent[0]["Subject"] == msg["Subject"] and NOTE in sent[0].get_content()


def test_without_the_key_the_pages_say_so_and_change_nothing(tmp_path, people_template):
    """The web UI beside a recorder that has not left the key in the run directory
    yet (after a boot): the phonebook says the data is locked, writes nothing."""
    from firmware.storage.fieldseal import LazyFieldCipher, load_field_cipher

    class Vault:
        key = os.urandom(32)

        def read_key(self, name):
            return self.key

    data = tmp_path / "data"
    box, people = people_template.box(tmp_path, cipher=None)
    cipher = load_field_cipher(str(data), vault=Vault(), run_dir=str(tmp_path / "boot-1"))
    Phonebook = type(box.web.phonebook)
    Phonebook(box.web.db, box.services.wall_us, cipher).put(NUMBER, BOOK_NAME, "uk")
    locked = LazyFieldCipher(str(data), str(tmp_path / "boot-2"))
    box.web.phonebook = Phonebook(box.web.db, box.services.wall_us, locked)
    try:
        resp = people["sam"].get("/phonebook")
        assert resp.status_code == 503 and "Personal data locked" in resp.get_data(as_text=True)
        resp = box.post(people["sam"], "/phonebook", {"number": "01632960999", "name": "X"}, token_from="/")
        assert resp.status_code == 503
        assert box.web.db.one("SELECT count(*) FROM phonebook")[0] == 1
    finally:
        box.close()


def test_failed_logins_are_throttled_and_web_db_holds_no_address(sealed):
    box, people = sealed
    address = "203.0.113.177"
    client = box.client()
    client.environ_base["REMOTE_ADDR"] = address
    for n in range(10):
        assert box.try_login(client, "user%d" % n, "some password").status_code == 400
    assert box.try_login(client, "alice", box.ADMIN[1]).status_code == 429
    other = box.client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.99"
    box.login("alice", client=other)
    keys = [r[0] for r in box.web.db.query("SELECT key FROM throttle")]
    assert keys and all(k.split(":", 1)[1].startswith("lkp1:") for k in keys)
    box.web.db._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert scan_data(box, [address]) == []


def test_a_change_cut_short_leaves_its_note_sealed(sealed, monkeypatch):
    """A change is noted in web.db before it is made (web/intent.py), and a cut leaves
    the note there until the next start: a phonebook number, or the address a password
    was reset from, must not be in it in clear."""
    from support.web import Cut

    box, people = sealed
    real = box.web.db.tx
    begun = []

    def tx():
        begun.append(1)
        if len(begun) == 2:  # the note's transaction is the first, the change's the second
            raise Cut()
        return real()

    monkeypatch.setattr(box.web.db, "tx", tx)
    with pytest.raises(Cut):
        box.post(
            people["sam"],
            "/phonebook",
            {"number": "01632 960600", "name": BOOK_NAME},
            token_from="/phonebook",
        )
    monkeypatch.undo()
    (value,) = [v for k, v in box.web.db.query("SELECT key, value FROM site") if k.startswith("rows_change:")]
    assert value.startswith("lkp1:")
    box.web.db._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert scan_data(box, [NUMBER, NUMBER_INTL, BOOK_NAME]) == []


def test_a_concern_is_kept_sealed_and_reads_back(sealed, tmp_path):
    """A concern may name a caller: alarms.db holds its words only sealed, the alarms page
    reads them; with the key not open yet (after a boot) it is refused, nothing kept."""
    from firmware.alarmlog import AlarmLog
    from firmware.storage.fieldseal import LazyFieldCipher

    box, people = sealed
    words = "Mrs Quennell-Oyelaran on line 2 asked not to be recorded"
    resp = box.post(people["sam"], "/concerns", {"concern": words}, token_from="/alarms")
    assert resp.status_code == 302
    assert scan_data(box, ["Quennell-Oyelaran"]) == []
    assert "from sam: " + words in people["sam"].get("/alarms").get_data(as_text=True)
    raised = len(box.alarm_log.history())
    # The web UI beside a recorder that has not left the key in the run directory yet.
    os.makedirs(tmp_path / "keyless" / "data")
    with open(tmp_path / "keyless" / "data" / "storage.key", "w") as f:
        f.write("{}")  # this box seals
    locked = LazyFieldCipher(str(tmp_path / "keyless" / "data"), str(tmp_path / "keyless" / "run"))
    keyless = AlarmLog(box.alarm_log.path, box.services, box.audit, locked)
    box.services.alarms = keyless
    try:
        resp = box.post(people["sam"], "/concerns", {"concern": words + " again"}, token_from="/alarms")
        assert resp.status_code == 503 and "recorder has not started" in resp.get_data(as_text=True)
        assert len(box.alarm_log.history()) == raised
        assert [r["message"] for r in keyless.history() if r["kind"] == "staff_concern"] == [
            "(sealed: readable on the box once the recorder has started)"
        ]
    finally:
        box.services.alarms = box.alarm_log
        keyless.close()


def test_a_request_from_my_line_is_kept_sealed_on_the_staff_members_line(sealed):
    """Raised on the staff member's line rather than the whole box, its words (who asked,
    what) are still kept only sealed (alarms.db's PRIVATE_KINDS), and read back."""
    box, people = sealed
    box.add_user(people["alice"], "stella", ["staff"], [3])
    staff = box.login("stella")
    resp = box.post(staff, "/my-line/request", {"kind": "objection"}, token_from="/my-line")
    assert resp.status_code == 302
    [row] = [r for r in box.alarm_log.history() if r["kind"] == "staff_concern"]
    assert row["line"] == 3 and row["message"].startswith("from stella: asked on My line")
    assert [f for f, _ in scan_data(box, ["stella: asked"]) if f.startswith("alarms")] == []
    assert "from stella: asked on My line" in people["sue"].get("/alarms").get_data(as_text=True)
