"""The dashboard shows what each line learned of its hub, ATA or exchange (issue 18)."""

from firmware.linecheck import label


def test_the_learned_line_source_is_shown(box, people):
    learned = {
        "caller_id": "v23:before_ring:dtas:reversal",
        "clear": "remote_break",
        "profiles": ["uk-dv-hub"],
    }
    learned["text"] = label(learned)
    box.status._lines[2]["learned"] = learned
    page = people["ivan"].get("/").get_data(as_text=True)
    assert "Line source (learned)" in page
    assert "caller ID v23 before ring (dtas, reversal); clear: loop break; like uk-dv-hub" in page


def test_nothing_learned_yet_shows_nothing(box, people):
    page = people["ivan"].get("/").get_data(as_text=True)
    assert 'class="learned"></td>' in page
