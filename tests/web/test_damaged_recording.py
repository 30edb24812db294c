"""A recording the card damaged (its file no longer the one the box wrote, as `verify` finds
it): Listen said nothing, and the player stayed silent, its audio answered with an error
page the browser cannot show. Now the Listen form says the recording cannot be played and
why, before any player or playback entry."""

from web.services import StoreRecordings

from support.web import LISTEN_REASON, listen


def test_listening_to_a_recording_the_card_damaged_says_so_and_shows_no_player(box, people):
    box.add_recordings([1, 5])
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    path = box.store.path_of(box.store.for_call(1)["id"])
    with open(path, "r+b") as f:  # a few bytes gone bad on the card, the size unchanged
        f.seek(500)
        f.write(b"XXXXXXXX")
    sam = people["sam"]
    resp = listen(sam, 1, LISTEN_REASON)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 409 and 'id="player"' not in page, page
    assert 'id="error-recording"' in page and "Nothing was played." in page
    assert page.count("has changed since it was recorded") == 1  # said once, beside the state
    assert "has changed since it was recorded" in page and "linekeeper verify" in page
    assert "`" not in page  # a page is no console: backticks were shown as they are
    assert "playback" not in box.audit_actions()
    # An undamaged one still plays.
    resp = listen(sam, 5, LISTEN_REASON)
    assert resp.status_code == 200 and 'id="player"' in resp.get_data(as_text=True)


def test_the_call_page_says_a_recording_the_card_damaged_cannot_be_played_before_any_listen(box, people):
    """The call page said "Complete" and offered Listen and Export for a recording whose file
    the card had damaged: only a Listen found it out. The page says it at once."""
    box.add_recordings([1, 5])
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    path = box.store.path_of(box.store.for_call(1)["id"])
    with open(path, "r+b") as f:
        f.seek(500)
        f.write(b"XXXXXXXX")
    page = people["sam"].get("/calls/1").get_data(as_text=True)
    assert 'id="damaged"' in page and "has changed since it was recorded" in page
    assert '<span id="recording-state">Damaged: cannot be played</span>' in page  # it read Complete
    assert 'id="listen-form"' not in page and 'id="export-form"' not in page
    page = people["sam"].get("/calls/5").get_data(as_text=True)
    assert 'id="damaged"' not in page and 'id="listen-form"' in page and 'id="export-form"' in page
