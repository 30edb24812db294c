"""Settings → Key store backup: an installer with a key slot that opens every line downloads
a copy of the key store (audited, not cached), the page says when the last was made and that a
rekey made it out of date, and the copy puts the key store back where it was lost. An
installer without that key is refused the copy (it allows offline guessing), audited."""

import json
import os

from firmware import keybackup
from firmware.recording.store import RecordingStore
from firmware.rekey import Rekey
from tests.support.web import ADMIN


def _download(box, client):
    return box.post(client, "/settings/keystore-backup", token_from="/settings")


def test_an_installer_downloads_the_key_store_audited_and_it_restores(box, people):
    ivan = people["alice"]  # an installer and supervisor whose key opens every line
    page = ivan.get("/settings").get_data(as_text=True)
    assert 'id="no-backup"' in page
    current = keybackup.key_store_fingerprint(box.services.keystore.public_key())
    assert current in page

    resp = _download(box, ivan)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="linekeeper-keystore-')
    assert disposition.endswith('.json"')
    doc = json.loads(resp.get_data())
    assert doc["key_store"] == current and doc["made_at"] and doc["host"]
    keystore = os.path.join(box.data_dir, "keys", "keystore.json")
    with open(keystore, "rb") as f:
        original = f.read()
    assert doc["keystore"].encode() == original
    entry = box.services.audit.entries(limit=1)[0]
    assert (entry.actor, entry.action) == ("alice", "key_backup")
    assert entry.details["phase"] == "made" and entry.details["key_store"] == current
    raw, _ = box.services.keystore.copy_bytes()
    assert entry.details["contents"] == keybackup.key_store_contents(raw)
    assert "address" in entry.details

    page = ivan.get("/settings").get_data(as_text=True)
    assert 'id="last-backup"' in page and 'id="no-backup"' not in page

    # The card loses the key store: the copy puts it back, opened with the recovery key.
    os.unlink(keystore)
    keybackup.restore(box.data_dir, resp.get_data(), "download", recovery_key=box.recovery_key)
    with open(keystore, "rb") as f:
        assert f.read() == original


def test_after_a_rekey_the_page_says_the_last_backup_no_longer_matches(box, people):
    ivan = people["alice"]
    assert _download(box, ivan).status_code == 200
    keystore = box.services.keystore
    store = RecordingStore(box.data_dir)
    try:
        with keystore.unlock(*ADMIN) as admin:
            Rekey(keystore, store, None, lambda *a: None, lambda *a: None).run(
                admin, ADMIN[0], ADMIN[1], lambda key: None
            )
    finally:
        store.close()
    ivan = box.login("alice")  # the rekey ended every session
    page = ivan.get("/settings").get_data(as_text=True)
    assert 'id="backup-out-of-date"' in page and "no longer matches" in page
    assert _download(box, ivan).status_code == 200
    page = ivan.get("/settings").get_data(as_text=True)
    assert 'id="last-backup"' in page and 'id="backup-out-of-date"' not in page


def test_a_supervisor_downloads_no_key_store(box, people):
    before = len(box.services.audit)
    assert _download(box, people["sam"]).status_code == 403
    assert len(box.services.audit) == before


def test_an_installer_without_every_line_s_key_is_refused_the_copy_audited(box, people):
    """An installer-only account downloaded the key store: it opens nothing by itself, but
    its holder could guess at its Argon2id password slots offline, with no throttle or
    lockout. Only an installer whose session holds a key that opens every line (who can
    already open every recording) gets it; the others are refused, audited, and the page
    says who may."""
    ivan = people["ivan"]
    page = ivan.get("/settings").get_data(as_text=True)
    assert 'id="keystore-backup"' not in page and 'id="backup-needs-key"' in page
    assert "guess its passwords offline" in page
    before = len(box.services.audit)
    resp = _download(box, ivan)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "Content-Disposition" not in resp.headers
    assert '"keystore"' not in text and "No backup was made" in text
    assert "installer who is also a supervisor" in text
    (entry,) = box.services.audit.entries(limit=len(box.services.audit) - before)
    assert (entry.actor, entry.action, entry.details["phase"]) == ("ivan", "key_backup", "refused")
    assert entry.details["reason"] == "no recording key that opens every line" and "address" in entry.details
    # A refusal is no backup: the page still says none was made.
    assert 'id="no-backup"' in ivan.get("/settings").get_data(as_text=True)
    page = people["alice"].get("/settings").get_data(as_text=True)
    assert 'id="keystore-backup"' in page and 'id="backup-needs-key"' not in page


def test_refusals_do_not_hide_the_last_backup_made(box, people):
    """The last backup made was looked for among the newest 20 key_backup entries only: an
    installer refused the copy 20 times turned checklist 18 amber and the page said no
    backup was made. It is found behind any number of refusals."""
    assert _download(box, people["alice"]).status_code == 200
    for _ in range(25):
        assert _download(box, people["ivan"]).status_code == 403
    page = people["ivan"].get("/settings").get_data(as_text=True)
    assert 'id="last-backup"' in page and 'id="no-backup"' not in page
    checklist = people["audrey"].get("/documents/checklist").get_data(as_text=True)
    assert "the key store was backed up on" in checklist


def test_the_backup_carries_the_inventory_and_the_page_shows_it(box, people):
    """A box stolen with no archive: the backup downloaded from this page says what the box
    held (the harness's 40 calls on lines 1 to 4, its accounts), and the page shows the
    last backup's inventory; no caller's number in either."""
    alice = people["alice"]
    page = alice.get("/settings").get_data(as_text=True)
    assert 'id="backup-inventory"' not in page  # no backup yet
    resp = _download(box, alice)
    doc = json.loads(resp.get_data())
    inv = doc["inventory"]
    assert (inv["calls"], inv["lines"], inv["callers"]) == (40, [1, 2, 3, 4], 40)
    assert inv["first_call"] == "2026-03-02T09:00:00Z" and inv["last_call"] == "2026-03-02T09:39:00Z"
    assert inv["accounts"] == len(box.db_users()) and inv["accounts_by_role"]["auditor"] == 1
    assert inv["made_at"] == doc["made_at"] and inv["unreadable"] == []
    assert "0207946" not in resp.get_data(as_text=True)
    entry = box.services.audit.entries(limit=1)[0]
    assert entry.action == "key_backup" and entry.details["inventory"] == inv

    page = alice.get("/settings").get_data(as_text=True)
    shown = page.split('id="backup-inventory">', 1)[1].split("</ul>", 1)[0]
    assert "40 calls in the call log, from 2026-03-02T09:00:00Z to 2026-03-02T09:39:00Z (UTC)" in shown
    assert "on lines 1, 2, 3, 4; 40 distinct callers" in shown
    assert "%d accounts" % inv["accounts"] in shown and "0207946" not in shown


def test_a_backup_entry_with_an_inventory_of_another_shape_still_shows_the_settings_page(box, people):
    """The page shows the last backup's inventory read back from its audit entry: one with
    keys missing or of another type (an older release's, hand-edited) failed the page."""
    inv = {"calls": "forty", "recordings": 3, "accounts_by_role": ["auditor"], "accounts": 2}
    box.services.audit.append(
        "alice", "key_backup", None, {"phase": "made", "inventory": inv}, box.clock.t_us
    )
    resp = people["alice"].get("/settings")
    assert resp.status_code == 200
    shown = resp.get_data(as_text=True).split('id="backup-inventory">', 1)[1].split("</ul>", 1)[0]
    assert "3 recordings held" in shown and "2 accounts" in shown and "calls in the call log" not in shown
