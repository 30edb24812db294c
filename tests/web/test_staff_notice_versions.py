"""What the staff notice said, and since when: "when did the notice last change, and what did
it say before?"

The notice is made from the settings each time it is shown, so once a setting changed
nothing on the box could show what staff had been told before, nor when that changed. Now
the audit trail keeps the notice's words the first time each version is shown, and the
page shows any version kept, with when it was first shown, and when the next one was."""

import dataclasses
import html
import re

from support.web import S


def change_pci(box, **fields):
    config = box.config_store.get()
    pci = dataclasses.replace(config.policy.pci, **fields)
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, pci=pci)))


def versions(box):
    return box.services.audit.entries(limit=100, action="staff_notice", newest_first=False)


def notice(client, query=""):
    resp = client.get("/documents/staff-notice" + query)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return html.unescape(resp.get_data(as_text=True))


def test_each_version_of_the_notice_is_kept_and_shown_again_with_its_dates(box, people):
    change_pci(box, pause_code="*1", button=False)
    first = notice(people["sue"])
    [kept] = versions(box)
    assert (kept.actor, kept.target) == ("sue", "staff_notice")
    assert kept.details["notice"]["pci"] == "key *1 on the handset"
    # When the words were first shown (kept then): not "shown since", as if in effect from then.
    assert "These words were first shown on Mon 2 Mar 2026" in first and "entry %d" % kept.seq in first
    notice(people["sam"])  # the same words: nothing more kept
    assert len(versions(box)) == 1

    box.clock.advance(600)  # ten minutes later (a day would end the sessions)
    change_pci(box, pause_code="*7", button=True)
    now = notice(people["sam"])
    old, new = versions(box)
    assert old.seq == kept.seq and new.actor == "sam" and "*7" in new.details["notice"]["pci"]
    assert "key *7 on the handset or press the line's pause button" in now
    assert "These words were first shown on Mon 2 Mar 2026, 09:10:00 GMT" in now
    assert 'href="/documents/staff-notice?version=%d"' % old.seq in now

    # What it said before, when, and until when: for an auditor, and for anyone it is for.
    for who in ("audrey", "ivan"):
        before = notice(people[who], "?version=%d" % old.seq)
        assert "key *1 on the handset: recording pauses" in before and "*7" not in before
        said = " ".join(re.sub(r"<[^>]+>", " ", before).split())
        assert (
            "as it was first shown on Mon 2 Mar 2026, 09:00:00 GMT, as the audit trail kept it (entry %d); "
            "another was first shown on Mon 2 Mar 2026, 09:10:00 GMT" % old.seq
        ) in said
    assert len(versions(box)) == 2  # looking at an old version keeps nothing new
    pdf = people["audrey"].get("/documents/staff-notice.pdf?version=%d" % old.seq)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"

    # The audit page links each kept version, its words not spread over the page.
    trail = people["audrey"].get("/audit?action=staff_notice").get_data(as_text=True)
    assert trail.count('href="/documents/staff-notice?version=') == 2
    assert "key *1 on the handset" not in trail


def test_a_version_that_is_not_one_is_refused_and_nothing_is_kept(box, people):
    notice(people["sam"])
    log = box.services.audit
    playback = log.append("sam", "playback", "1", {"line": 1}, box.clock() + S)
    before = len(log)
    for asked in ("abc", "0", str(playback.seq), "99999999999999999999999", "-1"):
        resp = people["audrey"].get("/documents/staff-notice?version=" + asked)
        assert resp.status_code == 400, asked
        assert "There is no version %s of the staff notice" % asked[:20] in html.unescape(
            resp.get_data(as_text=True)
        )
        assert people["audrey"].get("/documents/staff-notice.pdf?version=" + asked).status_code == 400
    assert len(log) == before


def test_the_newest_version_is_current_only_while_the_settings_still_make_it(box, people):
    """``?version=`` of the newest kept version was called the notice now (no "until"), even
    once the settings had changed and nobody had been shown the new words yet. It is
    current only while its words are the notice's as made from the settings now."""
    change_pci(box, pause_code="*1", button=False)
    notice(people["sue"])
    [kept] = versions(box)
    asked = "?version=%d" % kept.seq
    same = notice(people["audrey"], asked)
    assert "These words were first shown on Mon 2 Mar 2026" in same and "The notice now" not in same
    change_pci(box, pause_code="*7", button=True)
    for who in ("audrey", "sam"):
        said = " ".join(re.sub(r"<[^>]+>", " ", notice(people[who], asked)).split())
        assert "These words were first shown" not in said, said
        assert "the settings have changed since, and the notice now says otherwise" in said
        assert "The notice now" in said and "key *1 on the handset" in said
    assert len(versions(box)) == 1  # looking at a version keeps nothing new
    pdf = people["audrey"].get("/documents/staff-notice.pdf" + asked)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
