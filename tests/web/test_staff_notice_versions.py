"""What the staff notice said, and since when: "when did the notice last change, and what did
it say before?"

The notice is made from the settings each time it is shown, so once a setting changed
nothing on the box could show what staff had been told before, nor when that changed. Now
the audit trail keeps the notice's words as the settings making them are saved (or else the
first time each version is shown), and the page shows any version kept, with when it took
effect or was first shown, and when the next one did."""

import dataclasses
import html
import re

from support.web import S


def change_pci(box, **fields):
    config = box.config_store.get()
    pci = dataclasses.replace(config.policy.pci, **fields)
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, pci=pci)))


def versions(box, since=0):
    """The notice's versions kept after the trail's entry ``since`` (the set-up box keeps
    those its wizard and the users page saved)."""
    return box.services.audit.entries(limit=100, action="staff_notice", newest_first=False, after_seq=since)


def newest(box):
    return box.services.audit.entries(limit=1)[0].seq


def notice(client, query=""):
    resp = client.get("/documents/staff-notice" + query)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return html.unescape(resp.get_data(as_text=True))


def test_each_version_of_the_notice_is_kept_and_shown_again_with_its_dates(box, people):
    since = newest(box)
    change_pci(box, pause_code="*1", button=False)
    first = notice(people["sue"])
    [kept] = versions(box, since)
    assert (kept.actor, kept.target) == ("sue", "staff_notice")
    assert kept.details["notice"]["pci"] == "key *1 on the handset"
    # When the words were first shown (kept then): not "shown since", as if in effect from then.
    assert "These words were first shown on Mon 2 Mar 2026" in first and "entry %d" % kept.seq in first
    notice(people["sam"])  # the same words: nothing more kept
    assert len(versions(box, since)) == 1

    box.clock.advance(600)  # ten minutes later (a day would end the sessions)
    change_pci(box, pause_code="*7", button=True)
    now = notice(people["sam"])
    old, new = versions(box, since)
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
    assert len(versions(box, since)) == 2  # looking at an old version keeps nothing new
    pdf = people["audrey"].get("/documents/staff-notice.pdf?version=%d" % old.seq)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"

    # The audit page links each kept version, its words not spread over the page.
    trail = people["audrey"].get("/audit?action=staff_notice").get_data(as_text=True)
    assert trail.count('href="/documents/staff-notice?version=') == len(versions(box))
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
    since = newest(box)
    change_pci(box, pause_code="*1", button=False)
    notice(people["sue"])
    [kept] = versions(box, since)
    asked = "?version=%d" % kept.seq
    same = notice(people["audrey"], asked)
    assert "These words were first shown on Mon 2 Mar 2026" in same and "The notice now" not in same
    change_pci(box, pause_code="*7", button=True)
    for who in ("audrey", "sam"):
        said = " ".join(re.sub(r"<[^>]+>", " ", notice(people[who], asked)).split())
        assert "These words were first shown" not in said, said
        assert "the settings have changed since, and the notice now says otherwise" in said
        assert "The notice now" in said and "key *1 on the handset" in said
    assert len(versions(box, since)) == 1  # looking at a version keeps nothing new
    pdf = people["audrey"].get("/documents/staff-notice.pdf" + asked)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"


def pci_saved(box, client, pause_code):
    """The card-payment form of the rules page sent with ``pause_code``; its response."""
    form = {"pci-pause_code": pause_code, "pci-resume_code": "*2", "pci-button": "on"}
    form.update({"pci-auto_resume_s": "120", "csrf_token": box.token_of(client, "/rules")})
    return client.post("/rules/card-payments", data=form)


def test_a_version_is_kept_from_when_its_settings_were_saved(box, people):
    """A version was kept only once shown, dated then: settings saved in the morning and the
    notice first opened in the afternoon read as words in effect from the afternoon, and words
    nobody opened before the settings changed again were never kept. Saving the settings that
    make the notice now keeps its words at once, by whoever saved, saying "in effect from";
    one entry per version, whoever opens it after and however often it is saved."""
    ivan, sam = people["ivan"], people["sam"]
    since = newest(box)
    assert pci_saved(box, ivan, "*5").status_code == 302
    [saved] = versions(box, since)
    assert (saved.actor, saved.details["saved"], saved.details["address"]) == ("ivan", True, "192.0.2.10")
    assert saved.details["notice"]["pci"].startswith("key *5 on the handset")
    assert saved.wall_us == box.clock()
    # Saved again as it is, then opened an hour later: still that one version, dated the save.
    assert pci_saved(box, ivan, "*5").status_code == 302
    box.clock.advance(600)
    said = " ".join(re.sub(r"<[^>]+>", " ", notice(sam)).split())
    assert versions(box, since) == [saved]
    assert (
        "These words were in effect from Mon 2 Mar 2026, 09:00:00 GMT (audit trail entry %d" % saved.seq
        in said
    )
    # Changed twice with nobody looking: each version is kept, the first until the second.
    assert pci_saved(box, ivan, "*6").status_code == 302
    box.clock.advance(600)
    assert pci_saved(box, ivan, "*7").status_code == 302
    first, second, third = versions(box, since)
    assert (
        first == saved and "*6" in second.details["notice"]["pci"] and "*7" in third.details["notice"]["pci"]
    )
    said = " ".join(re.sub(r"<[^>]+>", " ", notice(ivan, "?version=%d" % second.seq)).split())
    assert (
        "as it was in effect from Mon 2 Mar 2026, 09:10:00 GMT, as the audit trail kept it (entry %d); "
        "another took effect on Mon 2 Mar 2026, 09:20:00 GMT" % second.seq
    ) in said
    assert "In effect from Mon 2 Mar 2026, 09:10:00 GMT" in notice(sam)  # in the list of versions
    # A form refused changes nothing, and keeps nothing.
    assert pci_saved(box, ivan, "*1x").status_code == 400
    assert len(versions(box, since)) == 3


def test_words_a_config_import_changed_are_kept_at_the_web_uis_start(box, people):
    """`linekeeper config import` writes config.json behind the pages; a running box uses it
    after a restart. The web UI's start keeps the words it makes as in effect from then."""
    from support.web import restart_web

    notice(people["sam"])
    since = newest(box)
    restart_web(box)  # the same words: nothing kept
    assert versions(box, since) == []
    change_pci(box, pause_code="*4", button=False)  # as an import writes it
    box.clock.advance(600)
    restart_web(box)
    [kept] = versions(box, since)
    assert (kept.actor, kept.details["saved"], kept.wall_us) == ("system", True, box.clock())
    assert kept.details["notice"]["pci"] == "key *4 on the handset"


def test_a_change_of_a_lines_rules_makes_a_new_version_with_its_words(box, people):
    """The notice said "recorded by the rules" whatever the rules were, so a rule changed
    (a sample, an exclude list) kept the same version: what staff had been told of which
    calls are recorded was nowhere. Each line's rules are in its words now, so a change of
    them is a new version, and the old one still says the rules it was shown with."""
    from firmware.policy.settings import LineMode

    since = newest(box)  # (the versions the set-up box kept)
    config = box.config_store.get()
    rules = dataclasses.replace(config.policy.rules, lines=(LineMode(1, "by_rule"),), sample_percent=50)
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, rules=rules)))
    notice(people["sam"])
    [kept] = versions(box, since)
    assert "only 50 % picked at random" in kept.details["notice"]["lines"][0]["how"]
    box.clock.advance(600)
    config = box.config_store.get()
    rules = dataclasses.replace(config.policy.rules, sample_percent=20)
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, rules=rules)))
    assert "only 20 % picked at random" in notice(people["sam"])
    old, new = versions(box, since)
    assert old.seq == kept.seq and "only 20 % picked at random" in new.details["notice"]["lines"][0]["how"]
    before = notice(people["audrey"], "?version=%d" % old.seq)
    assert "only 50 % picked at random" in before and "only 20 %" not in before
