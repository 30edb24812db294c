"""PCI DSS: a card number typed into any form field never comes back on a page.

Every POST form of the box's pages (each page as a user whose role may see it, see
test_access_matrix.py) and of the archive viewer's is submitted with a card number, in
groups and as one run, in every text field it has; neither form of it is in the answer,
nor in the page a redirect leads to. A refused field comes back empty where its template
asks ``typed_back``, else with the card number's digits masked (X), as in a message that
quotes what was typed (``web.site.card_free``)."""

import html.parser
import re

from markupsafe import Markup

from firmware.signing import load_signer
from web.archive import create_archive_app
from web.site import card_free, no_card

from .test_access_matrix import MATRIX, SAMPLE_ARGS, USERS, allowed, routes
from .test_archive_access import (  # noqa: F401 (viewer: a fixture)
    ANON,
    _client,
    _login_as,
    _viewer_with_one_recording,
    viewer,
)
from .test_requests import log_request

CARDS = ["4111 1111 1111 1111", "4111111111111111"]
MASKED_IN_FIELD = re.compile(r'value="[^"]*X{4}[^"]*"|<textarea[^>]*>[^<]*X{4}')
TEXT_TYPES = {"text", "search", "email", "tel", "url", "number", None}
# Pages reached with arguments: the SAR release form shows once a number is searched.
EXTRA_PAGES = {"sam": ["/sar?number=%2B44+20+7946+0000", "/calls/1", "/requests/1"]}


class Forms(html.parser.HTMLParser):
    """``forms``: ``[(action, [(name, value, is_text)])]`` of a page's POST forms."""

    def __init__(self):
        super().__init__()
        self.forms, self._form, self._select, self._radios = [], None, None, set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = None if (a.get("method") or "get").lower() != "post" else (a.get("action"), [])
            if self._form is not None:
                self.forms.append(self._form)
        elif self._form is None or "disabled" in a or not a.get("name") and tag != "option":
            return
        elif tag == "input":
            kind = (a.get("type") or "").lower() or None
            if kind in ("checkbox", "radio"):
                if kind == "radio" and a["name"] in self._radios:
                    return
                self._radios.add(a["name"])
                self._form[1].append((a["name"], a.get("value", "on"), False))
            elif kind in TEXT_TYPES:
                self._form[1].append((a["name"], a.get("value", ""), True))
            elif kind == "hidden":
                self._form[1].append((a["name"], a.get("value", ""), False))
        elif tag == "textarea":
            self._form[1].append((a["name"], "", True))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select:
            self._form[1].append((self._select, a.get("value", ""), False))
            self._select = None

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def forms_of(page):
    parser = Forms()
    parser.feed(page)
    return parser.forms


def typed_everywhere(client, url, forms, tried):
    """``[(where, what)]``: each card number found in the answer to each form of the page
    at ``url`` with a text field, submitted with the card number in every text field."""
    found = []
    for action, fields in forms:
        texts = [name for name, _, is_text in fields if is_text]
        key = (action, tuple(sorted(texts)))
        if not texts or key in tried or action in ("/logout",):
            continue
        tried.add(key)
        for card in CARDS:
            data = {}
            for name, value, is_text in fields:
                data.setdefault(name, card if is_text else value)
            resp = client.post(action or url, data=data, follow_redirects=True)
            body = resp.get_data(as_text=True)
            where = "%s (from %s) -> %d" % (action, url, resp.status_code)
            found += [(where, c) for c in CARDS if c in body or c.replace(" ", "&#32;") in body]
            # A field gives back nothing of it, not even masked (:func:`web.site.no_card`).
            found += [(where, "field: " + m) for m in MASKED_IN_FIELD.findall(body)]
    return found


def test_no_form_of_the_box_gives_back_a_typed_card_number(box, people):
    box.add_user(people["alice"], "stella", ["staff"], [4])
    box.add_recordings([1])
    box.recordings.store = box.store  # a release gets past "no recordings to release"
    load_signer(box.data_dir)
    log_request(box, people["sam"])
    pages = {}
    for method, rule in routes(box.app):
        if method != "GET" or rule.arguments or "." in rule.rule or rule.rule.startswith("/api/"):
            continue
        for role, name in USERS.items():
            if allowed(role, MATRIX[(method, rule.endpoint)]):
                pages.setdefault(name, []).append(rule.build({a: SAMPLE_ARGS[a] for a in rule.arguments})[1])
    for name, extra in EXTRA_PAGES.items():
        pages[name] += extra
    found, tried = [], set()
    for name, urls in sorted(pages.items()):
        client = box.login(name)
        box.chose_own_password(name)
        for url in urls:
            page = client.get(url, follow_redirects=True)
            assert page.status_code == 200, (name, url, page.status_code)
            found += [
                (name, where, card)
                for where, card in typed_everywhere(client, url, forms_of(page.get_data(as_text=True)), tried)
            ]
    reached = {action for action, _ in tried}
    assert reached >= {"/sar", "/requests", "/phonebook", "/my-line/request", "/calls/1/correct-name"}, (
        reached
    )
    assert not found, "\n".join(map(repr, found))


def test_no_form_of_the_archive_viewer_gives_back_a_typed_card_number(viewer, tmp_path):  # noqa: F811
    """As a supervisor (who may listen and export) of a call with a recording."""
    v = _viewer_with_one_recording(viewer, tmp_path)
    try:
        client, token = _client(create_archive_app(v), ANON)
        found, tried = (
            typed_everywhere(client, "/login", forms_of(client.get("/login").get_data(as_text=True)), set()),
            set(),
        )
        assert _login_as(client, token, "sara").status_code == 302
        for url in ("/sites", "/?box=leeds", "/calls/leeds/1", "/reports", "/password", "/help"):
            page = client.get(url)
            assert page.status_code == 200, (url, page.status_code)
            found += typed_everywhere(client, url, forms_of(page.get_data(as_text=True)), tried)
        assert {action for action, _ in tried} >= {"/calls/leeds/1/listen", "/calls/leeds/1/export"}, tried
        assert not found, found
    finally:
        v.close()


def test_a_page_masks_a_card_number_typed_in_any_form(box):
    """``card_free`` (every ``{{ }}`` of a page): a card number the request carries is
    masked as typed (groups apart by dashes too), one in groups or a run wherever it is,
    and text without one is left as it is."""
    form = {"reason": "ref 4111-1111-1111-1111", "port": "4111111111111111"}
    with box.app.test_request_context("/settings/mail", method="POST", data=form):
        assert card_free("Not 'ref 4111-1111-1111-1111'.") == "Not 'ref XXXX-XXXX-XXXX-XXXX'."
        assert card_free(4111111111111111) == "XXXXXXXXXXXXXXXX"
        assert card_free(Markup("<b>4111 1111 1111 1111</b>")) == Markup("<b>XXXX XXXX XXXX XXXX</b>")
        assert card_free("call 12 from 01632 960555, 2026-03-02 09:00:01") == (
            "call 12 from 01632 960555, 2026-03-02 09:00:01"
        )
        assert no_card("ref 4111.1111.1111.1111") == "" and no_card("ref 1234") == "ref 1234"
