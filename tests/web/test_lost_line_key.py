"""After `keystore restore --accept-lost-lines` (a key store backup made before a line's
recording key): the call page, the Listen form, an export and the dashboard say that line's
earlier recordings cannot be opened (its key is in no copy of the key store), never that they
were altered or damaged; which lines is read from the restore's audit entry (docs/keys.md)."""

import html

import pytest

from firmware.errors import LineKeyLostError
from firmware.keybackup import keys_lost
from web.services import StoreRecordings

from support.web import LISTEN_REASON, T0_US, audio_url, listen

DAY_US = 86_400 * 10**6
CANNOT = "This recording cannot be opened: its line's recording key is not in the box's key store"


@pytest.fixture
def lost(box, people):
    """Calls 1 and 5 (line 1) and 2 (line 2) recorded, then a key store put back whose
    backup lacked line 1's key, as the restore audits it."""
    box.add_recordings([1, 2, 5])
    box.audit.append(
        "cli",
        "key_backup",
        None,
        {"phase": "restored", "via": "recovery key", "lines_without_key": [1]},
        T0_US + DAY_US,
    )
    box.store.keys_lost_from = lambda: keys_lost(box.audit)  # as the recorder and web UI set it
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    return people


def test_the_call_page_says_the_recording_cannot_be_opened_and_offers_no_listen(box, lost):
    sam = lost["sam"]
    page = sam.get("/calls/1").get_data(as_text=True)
    assert 'id="key-lost"' in page and CANNOT in page
    assert "Nothing says it was altered" in page and "damaged" not in page
    assert 'id="listen-form"' not in page
    # Line 2's key is in the key store: its recording is offered as any.
    page = sam.get("/calls/2").get_data(as_text=True)
    assert 'id="key-lost"' not in page and 'id="listen-form"' in page
    # A Listen form sent all the same (a page opened before the restore) gives no player.
    resp = listen(sam, 1, LISTEN_REASON)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 409 and 'id="player"' not in page and CANNOT in page
    assert "`" not in page  # a page is no console: backticks were shown as they are
    assert "playback" not in box.audit_actions()


def test_an_export_refused_for_a_lost_key_says_so_and_is_audited(box, lost, monkeypatch):
    def export_bytes(recording_id, recording_key, fmt):
        raise LineKeyLostError(box.store.key_lost(box.store.get(recording_id)))

    monkeypatch.setattr(box.store, "export_bytes", export_bytes)
    form = {"reason": "complaint ref 1234", "format": "wav"}
    resp = box.post(lost["sam"], "/calls/1/export", form, "/calls/1")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 409 and CANNOT in page
    assert "damaged" not in page and "Nothing says it was altered" in page
    failed = box.services.audit.entries(limit=1, action="export")[0].details["failed"]
    assert "line 1's recording key is not in the key store" in failed
    assert "it cannot be opened, and is not known to be altered" in failed


def test_the_dashboard_says_how_many_recordings_of_which_lines_cannot_be_opened(box, lost):
    page = html.unescape(lost["sam"].get("/").get_data(as_text=True))
    assert (
        '<p class="error" id="keys-lost">2 recordings of line 1 cannot be opened by anyone: the key '
        "store was put back from a backup made before their line's recording key"
    ) in page
    # Not of a line they cannot see; one recorded since the restore is not counted.
    assert 'id="keys-lost"' not in lost["sue"].get("/").get_data(as_text=True)
    box.audit.append("cli", "key_backup", None, {"phase": "restored", "lines_without_key": [1]}, T0_US)
    page = lost["sam"].get("/").get_data(as_text=True)
    assert 'id="keys-lost"' not in page  # calls 1 and 5 began after that restore


def test_a_player_shown_before_the_restore_says_the_recording_cannot_be_opened(box, people, monkeypatch):
    box.add_recordings([1])
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    url = audio_url(people["sam"], 1)
    restored = {"phase": "restored", "lines_without_key": [1]}
    box.audit.append("cli", "key_backup", None, restored, T0_US + DAY_US)
    box.store.keys_lost_from = lambda: keys_lost(box.audit)

    def open_audio(recording_id, recording_key, sink=None):  # its file as the key store left it
        raise LineKeyLostError(box.store.key_lost(box.store.get(recording_id)))

    monkeypatch.setattr(box.store, "open_audio", open_audio)
    resp = people["sam"].get(url)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "Recording cannot be opened" in page
    assert "damaged" not in page and "Nothing says it was altered" in page
