"""Every entry a person's request to the web UI writes carries the address it came from.

The web UI's own entries get it from :func:`web.security.audit`; an entry written
another way (by the recorder on the page's behalf, or straight into the trail)
had none, and the audit page showed no "From address" for it. This walks every
route of the access matrix as a person allowed to call it, with the matrix's
(empty) forms and, for the routes below, a form that gets as far as the entry.
The ``retention_sweep`` entry an erasure adds is exempt: the box's bookkeeping,
never sealed (:data:`~firmware.storage.audit.UNSEALED_ACTIONS`), holds no
person's data; the ``delete`` entry before it has the address.
"""

from firmware.storage.audit import UNSEALED_ACTIONS, with_address
from tests.support.web import ADMIN
from web.rekeyjob import RekeyJob
from web.services import StoreRecordings

from .test_access_matrix import ANON, GONE, MATRIX, USERS, allowed, call, routes, url_for_rule
from .test_pause import FakeLive

ADDRESS = "192.0.2.77"
# Forms that get past the checks to the audited change: (endpoint, form) in order.
FORMS = [
    ("dashboard.pause", {"action": "pause"}),
    ("dashboard.pause", {"action": "resume"}),
    (
        "rights.create",
        {
            "kind": "access",
            "received": "2026-03-02",
            "requester": "Mrs Wilhelmina Pottage",
            "contact": "w.pottage@example.org",
            "numbers": "01632 960555",
            "details": "every recording of my calls in February",
        },
    ),
    # Call 1's recording (see prepare), then its caller's details, once it has none.
    ("calls.erase", {"erase_reason": "erasure request ref 77", "confirm": "yes"}),
    ("calls.erase_details", {"details_reason": "erasure request ref 78", "confirm": "yes"}),
    ("retention.confirm_clock", {"confirm": "yes"}),
    # A wrong password (the refusal the web UI audits), then the right one (the recorder's).
    ("rekey.start", {"slot_user": ADMIN[0], "password": "not the password 7", "confirm": "yes"}),
    ("rekey.start", {"slot_user": ADMIN[0], "password": ADMIN[1], "confirm": "yes"}),
]


class RecordingLive(FakeLive):
    """The box's side of a pause: audited as the recorder audits it, with what it was given."""

    def __init__(self, audit, wall_us):
        super().__init__()
        self.audit, self.wall_us = audit, wall_us

    def pause(self, line, actor, address=None):
        super().pause(line, actor, address)
        self._audit("pause", line, actor, address)

    def resume(self, line, actor, address=None):
        super().resume(line, actor, address)
        self._audit("resume", line, actor, address)

    def _audit(self, action, line, actor, address):
        details = {"line": line, "via": "web"}
        if address is not None:
            details["address"] = address
        self.audit.append(actor, action, "line:%d" % line, details, int(self.wall_us()))


def recording_rekey(box):
    """The recorder's side of a rekey, audited as :meth:`firmware.box.Box.rekey` audits it,
    with what it was given; the password checked by the key store, no key changed."""

    def run(user, password, actor, address=None):
        with box.services.keystore.unlock(user, password):
            pass
        for phase in ("started", "done"):
            details = with_address({"phase": phase, "slot": user}, address)
            box.services.audit.append(actor, "rekey", None, details, int(box.services.wall_us()))
        return {"summary": {"recordings": 0}, "recovery_key": "not a key"}

    def audit(actor, action, details):  # as web.rekeyjob's, for a refusal
        box.services.audit.append(actor, action, None, details, int(box.services.wall_us()))

    return RekeyJob(run, lambda: {"running": False, "progress": []}, audit)


def prepare(box):
    """What FORMS act on: a real recording of call 1, deletion suspended by a clock jump,
    a rekey."""
    box.add_recordings([1])
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    box.box_clock.start_wall_us += 3600 * 10**6  # an hour's jump
    assert box.sweeper.sweep().refused == "jump"
    box.services.rekey = recording_rekey(box)


def person_for(expected):
    for role in sorted(USERS):
        if role != ANON and allowed(role, expected):
            return USERS[role]
    return None


def test_every_entry_a_person_writes_from_a_page_says_where_from(box, people):
    box.add_user(people["alice"], "stella", ["staff"], [4])
    box.services.live = RecordingLive(box.services.audit, box.services.wall_us)
    missing, audited = [], set()

    def check(name, endpoint, send):
        client = box.login(name)
        client.environ_base["REMOTE_ADDR"] = ADDRESS
        before = box.services.audit.entries(limit=1)[0].seq
        send(client)
        if box.services.rekey is not None:
            box.services.rekey.wait(30)  # a rekey's entries are written in its own thread
        for entry in box.services.audit.entries(limit=100):
            if entry.seq <= before or entry.actor != name or entry.action in UNSEALED_ACTIONS:
                continue
            audited.add(endpoint)
            if entry.details.get("address") != ADDRESS:
                missing.append("%s: %s %s" % (endpoint, entry.action, entry.details))

    for method, rule in routes(box.app):
        expected = MATRIX[(method, rule.endpoint)]
        name = person_for(expected) if expected != GONE else None
        if name is not None:
            check(name, rule.endpoint, lambda client, m=method, r=rule: call(box, client, m, r, "x"))
    rules = {rule.endpoint: rule for _, rule in routes(box.app)}
    prepare(box)
    for endpoint, form in FORMS:
        url = url_for_rule(rules[endpoint])
        name = person_for(MATRIX[("POST", endpoint)])
        check(name, endpoint, lambda client, u=url, f=form: box.post(client, u, f, token_from="/"))
    assert not missing, "entries without the address they came from:\n" + "\n".join(missing)
    # Not a walk past everything: these did write entries.
    assert {endpoint for endpoint, _ in FORMS} <= audited, audited
