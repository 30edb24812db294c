"""The lines a data subject's request is about, on the Requests page: a supervisor logging a
request ("the staff member on line 2 objects") ticks its lines, and corrects them while it is
open; the register, its CSV and the request's page show them, and they choose which
supervisors are shown it (:func:`firmware.rights.concerns_lines`). A line the box does not
have is refused naming it, as is one that would take the request from the one logging it;
nothing is saved then. A supervisor who finds an open request is another line's hands it on
to that line's supervisors by ticking only their lines: audited, and it leaves their view."""

import csv
import io
import re

from support.web import page

REQUEST = {
    "kind": "objection",
    "received": "2026-03-02",
    "requester": "Stella Staff",
    "contact": "her desk",
    "details": "she objects to her calls being recorded",
}


def _entries(box):
    from firmware.rights import RightsRegister

    reg = RightsRegister(box.data_dir, box.services.cipher)
    try:
        return reg.entries()
    finally:
        reg.close()


def _logged(box):
    return [
        e for e in box.services.audit.entries(limit=1000, newest_first=False) if e.action == "data_request"
    ]


def _csv(client):
    resp = client.get("/requests.csv")
    assert resp.status_code == 200
    return {int(r["id"]): r["lines"] for r in csv.DictReader(io.StringIO(resp.get_data(as_text=True)))}


def _seen(client, rid):
    return re.search(r'name="seen" value="(\d+)"', page(client, "/requests/%d" % rid)).group(1)


def _set_lines(box, client, rid, lines, seen=None):
    form = {"action": "lines", "lines": lines, "seen": seen or _seen(client, rid)}
    return box.post(client, "/requests/%d" % rid, form, token_from="/requests/%d" % rid)


def test_a_supervisor_logs_the_lines_a_request_is_about_and_the_register_shows_them(box, people):
    sam, sue, audrey = people["sam"], people["sue"], people["audrey"]
    form = page(sam, "/requests").split('id="request-form"')[1].split("</form>")[0]
    for n in (1, 2, 3, 4):
        assert 'name="lines" value="%d" id="rq-line-%d"' % (n, n) in form
    resp = box.post(sam, "/requests", dict(REQUEST, lines=["2"]), token_from="/requests")
    assert resp.status_code == 302, resp.get_data(as_text=True)[-800:]
    rid = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    [entry] = _entries(box)
    assert entry["lines"] == [2]
    [audited] = _logged(box)
    assert audited.details["event"] == "logged" and audited.details["lines"] == [2]
    # Its page, the list and the CSV say so, to sam and the auditor.
    assert 'id="r-lines">line 2: <a id="r-sar"' in page(sam, "/requests/%d" % rid)
    for client in (sam, audrey):
        row = page(client, "/requests").split('id="request-%d"' % rid)[1].split("</tr>")[0]
        assert '<td data-label="About">line 2</td>' in row
        assert _csv(client) == {rid: "2"}
    # About sam's line 2: sue, a supervisor of line 3 only, is not shown it.
    assert sue.get("/requests/%d" % rid).status_code == 404 and _csv(sue) == {}
    # A caller's request, no line ticked, is about no line in particular.
    resp = box.post(sam, "/requests", REQUEST, token_from="/requests")
    other = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    row = page(sue, "/requests").split('id="request-%d"' % other)[1].split("</tr>")[0]
    assert '<td data-label="About">no line in particular</td>' in row and _csv(sue) == {other: ""}


def test_lines_the_box_does_not_have_are_refused_naming_them_and_nothing_is_logged(box, people):
    sam = people["sam"]
    for lines, named in (
        (["7"], "line 7"),
        (["2", "0", "x", "0"], "line 0 or 'x'"),
        (["-1"], "line '-1'"),
        (["٣"], "line '٣'"),
    ):
        resp = box.post(sam, "/requests", dict(REQUEST, lines=lines), token_from="/requests")
        assert resp.status_code == 400, lines
        html = resp.get_data(as_text=True)
        said = "There is no %s on this box: its lines are numbered 1 to 4." % named
        assert (
            '<span class="field-error" id="error-lines" role="alert">%s</span>' % said.replace("'", "&#39;")
            in html
        ), lines
        # What was typed is kept, the good lines ticked again.
        assert 'value="Stella Staff"' in html
        assert ('id="rq-line-2" checked' in html) == ("2" in lines)
    assert _entries(box) == [] and _logged(box) == []


def test_lines_only_another_supervisor_holds_are_refused_as_they_would_hide_the_request(box, people):
    """sam (lines 1 and 2) ticking sue's line 3 alone would log a request he is not shown
    (its page a 404 as he lands on it): refused, naming the line; with one of his own too it
    is his and sue's. A line no enabled supervisor holds is every supervisor's, so his to tick."""
    sam, sue, ivan = people["sam"], people["sue"], people["ivan"]
    resp = box.post(sam, "/requests", dict(REQUEST, lines=["3"]), token_from="/requests")
    assert resp.status_code == 400
    assert (
        "Line 3 is not granted to you: tick one of your lines (1, 2) too, or no line (then every "
        "supervisor is shown it), so that the request stays one you see; to hand it on to another "
        "supervisor, change its lines on its page once it is logged." in resp.get_data(as_text=True)
    )
    assert _entries(box) == [] and _logged(box) == []
    resp = box.post(sam, "/requests", dict(REQUEST, lines=["3", "1"]), token_from="/requests")
    assert resp.status_code == 302
    rid = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    assert _csv(sam) == {rid: "1,3"} and _csv(sue) == {rid: "1,3"}
    # alice (the admin) gives up line 4: nobody holds it, any supervisor may name it.
    resp = box.post(
        ivan,
        "/users/alice",
        {"roles": ["installer", "supervisor"], "lines": ["1", "2", "3"]},
        token_from="/users",
    )
    assert resp.status_code == 302
    resp = box.post(sam, "/requests", dict(REQUEST, lines=["4"]), token_from="/requests")
    assert resp.status_code == 302
    orphan = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    assert _csv(sue) == {rid: "1,3", orphan: "4"}


def test_the_lines_are_corrected_while_the_request_is_open_audited_and_checked_alike(box, people):
    sam, sue, audrey = people["sam"], people["sue"], people["audrey"]
    resp = box.post(sam, "/requests", REQUEST, token_from="/requests")
    rid = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    html = page(sam, "/requests/%d" % rid)
    form = html.split('id="request-lines"')[1].split("</form>")[0]
    assert 'name="action" value="lines"' in form and "checked" not in form
    assert 'id="request-lines"' not in page(audrey, "/requests/%d" % rid)
    resp = _set_lines(box, sam, rid, ["2", "1"])
    assert resp.status_code == 302 and resp.headers["Location"].endswith("?done=lines")
    html = page(sam, resp.headers["Location"])
    assert '<p class="notice" id="done" role="status">Saved: the request is about lines 1, 2.</p>' in html
    form = html.split('id="request-lines"')[1].split("</form>")[0]
    assert 'id="edit-line-1" checked' in form and 'id="edit-line-2" checked' in form
    assert 'id="edit-line-3" checked' not in form
    assert _entries(box)[0]["lines"] == [1, 2]
    changed = _logged(box)[-1]
    assert (changed.actor, changed.target) == ("sam", "request:%d" % rid)
    assert dict(changed.details, address=None) == {
        "event": "lines",
        "lines": [1, 2],
        "lines_before": [],
        "address": None,
    }
    assert "Lines before" in page(sam, "/requests/%d" % rid)  # its history says it
    # Now about sam's lines: no longer sue's to read or change.
    assert sue.get("/requests/%d" % rid).status_code == 404
    assert _set_lines(box, sue, rid, ["3"], seen="1").status_code == 404
    # Bad lines, a stale page: refused, nothing changed.
    before = (_entries(box)[0]["lines"], _entries(box)[0]["version"], len(_logged(box)))
    resp = _set_lines(box, sam, rid, ["9", "3"])
    assert resp.status_code == 400 and "There is no line 9 on this box" in resp.get_data(as_text=True)
    assert 'id="edit-line-9"' not in resp.get_data(as_text=True)
    assert 'id="edit-line-3" checked' in resp.get_data(as_text=True)  # what was ticked, kept
    resp = _set_lines(box, sam, rid, ["1"], seen="0")
    assert resp.status_code == 409 and "changed by someone else meanwhile" in resp.get_data(as_text=True)
    assert (_entries(box)[0]["lines"], _entries(box)[0]["version"], len(_logged(box))) == before
    # None ticked: about no line again, every supervisor's.
    assert _set_lines(box, sam, rid, []).status_code == 302
    assert _entries(box)[0]["lines"] == [] and sue.get("/requests/%d" % rid).status_code == 200
    # Answered, its lines stay as they were: no form, and a change is refused.
    resp = box.post(
        sam,
        "/requests/%d" % rid,
        {"action": "answer", "outcome": "stopped", "on": "2026-03-02", "seen": _seen(sam, rid)},
        token_from="/requests/%d" % rid,
    )
    assert resp.status_code == 302
    assert 'id="request-lines"' not in page(sam, "/requests/%d" % rid)
    resp = _set_lines(box, sam, rid, ["1"], seen="5")
    assert resp.status_code == 409 and "already answered" in resp.get_data(as_text=True)
    assert _entries(box)[0]["lines"] == []


def test_a_supervisor_hands_a_request_on_to_another_lines_supervisor_and_no_longer_sees_it(box, people):
    """sam (lines 1 and 2) finds the objection he logged about his line 1 is from the staff
    member on line 3: ticking line 3 alone hands it on to sue (line 3's supervisor), not to
    every supervisor; he is told so on the list, no longer shown it, and its history says
    that he moved it, when and from which lines."""
    sam, sue, audrey = people["sam"], people["sue"], people["audrey"]
    resp = box.post(sam, "/requests", dict(REQUEST, lines=["1"]), token_from="/requests")
    rid = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    assert sue.get("/requests/%d" % rid).status_code == 404
    hint = page(sam, "/requests/%d" % rid).split('id="edit-lines-hint">')[1].split("</span>")[0]
    said = "To hand it on to another supervisor, tick only their lines: you are then no longer shown it."
    assert said in hint
    resp = _set_lines(box, sam, rid, ["3"])
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/requests?handed=%d" % rid)
    assert _entries(box)[0]["lines"] == [3]
    assert (
        '<p class="notice" id="done" role="status">Request #%d handed on: it is about line 3 now, so '
        "that line&#39;s supervisors are shown it and you no longer are. Its history keeps who moved "
        "it and when.</p>" % rid
    ) in page(sam, resp.headers["Location"])
    moved = _logged(box)[-1]
    assert (moved.actor, moved.target) == ("sam", "request:%d" % rid)
    assert dict(moved.details, address=None) == {
        "event": "lines",
        "lines": [3],
        "lines_before": [1],
        "handed_on": True,
        "address": None,
    }
    # sam no longer reads or changes it; sue has it, on every page, and not box-wide.
    assert sam.get("/requests/%d" % rid).status_code == 404
    assert 'id="request-%d"' % rid not in page(sam, "/requests") and _csv(sam) == {}
    assert _set_lines(box, sam, rid, ["1"], seen="2").status_code == 404
    assert _csv(sue) == {rid: "3"} and _csv(audrey) == {rid: "3"}
    history = page(sue, "/requests/%d" % rid).split('id="request-history"')[1].split("</table>")[0]
    row = history.split("<tr>")[-1]
    assert '<td data-label="Who">sam</td>' in row
    assert "<dt>Lines before</dt><dd>1</dd>" in row
    assert "<dt>Handed on to those lines&#39; supervisors</dt><dd>yes</dd>" in row
    assert row.startswith('<th scope="row">Mon 2 Mar 2026, ')  # when, on the box's clock
    # The notice is sam's alone, and only while his hand-on is the request's last change: to
    # sue, or to sam once sue has changed it again, the same link says nothing of it.
    assert 'id="done"' not in page(sue, "/requests?handed=%d" % rid)
    assert _set_lines(box, sue, rid, ["3", "4"]).status_code == 302
    assert 'id="done"' not in page(sam, "/requests?handed=%d" % rid)
    for junk in ("x", "99", "9" * 40):
        assert 'id="done"' not in page(sam, "/requests?handed=%s" % junk)
