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


def test_only_installers_see_the_line_source(box, people):
    """What a line learned of its hub, ATA or exchange is for the installer who commissions
    it: a supervisor's and an auditor's dashboard showed it too, a column of words
    ("caller ID v23 before ring (dtas, reversal); like silent-ata") they cannot act on."""
    learned = {"caller_id": "v23:before_ring:dtas:reversal", "clear": None, "profiles": ["silent-ata"]}
    learned["text"] = label(learned)
    box.status._lines[2]["learned"] = learned
    for who in ("sam", "audrey"):
        page = people[who].get("/").get_data(as_text=True)
        assert "Line source" not in page and 'class="learned"' not in page, who
        assert learned["text"] not in page, who
        lines = people[who].get("/api/status").get_json()["lines"]
        assert all("learned" not in entry for entry in lines), who
    assert learned["text"] in people["ivan"].get("/").get_data(as_text=True)
    assert any("learned" in e for e in people["ivan"].get("/api/status").get_json()["lines"])
