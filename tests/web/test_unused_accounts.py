"""The Users page says when each account last logged in, and lists those nobody has logged in
to for 90 days: a leaver's account, never deleted, kept opening what it opened, and nothing
on the box said so (PCI DSS v4.0 8.2.6)."""

from web.views.users import UNUSED_DAYS

DAY_S = 86_400


def _page(client):
    return client.get("/users").get_data(as_text=True)


def test_accounts_unused_for_90_days_are_listed_for_installers_and_auditors(box, people):
    page = _page(people["alice"])
    assert 'id="unused-accounts"' not in page
    assert (
        page.split('id="last-login-sam">')[1].startswith("Last login: ")
        and "never" not in page.split('id="last-login-sam">')[1].split("</span>")[0]
    )
    box.clock.advance((UNUSED_DAYS - 1) * DAY_S)
    alice = box.login("alice")
    assert 'id="unused-accounts"' not in _page(alice)  # 89 days: not yet
    box.clock.advance(2 * DAY_S)
    alice = box.login("alice")
    audrey = box.login("audrey")
    page = _page(alice)
    said = page.split('id="unused-accounts">')[1].split("</p>")[0]
    assert said.startswith("Not logged in for 90 days or more: ")
    for name in ("ivan", "sam", "sue"):
        assert "%s (91 days)" % name in said
    assert "alice" not in said and "audrey" not in said
    assert "delete theirs below" in said
    assert "(unused for 91 days)" in page.split('id="last-login-sam"')[1].split("</th>")[0]
    readonly = _page(audrey)
    assert "<form" not in readonly.split("<main")[1].split("</main>")[0]
    assert "sam (91 days)" in readonly.split('id="unused-accounts">')[1].split("</p>")[0]


def test_a_new_account_counts_from_when_it_was_made_and_not_an_old_namesakes_login(box, people):
    """An account never logged in to counts from when it was made; one made again under a
    leaver's name is not taken as used by the leaver's logins."""
    box.clock.advance(100 * DAY_S)
    alice = box.login("alice")
    box.post(alice, "/users/sam/delete")
    box.add_user(alice, "sam", ["supervisor"], lines=(1,))
    page = _page(alice)
    assert page.split('id="last-login-sam">')[1].split("</span>")[0] == "Last login: never"
    assert "sam (" not in page.split('id="unused-accounts">')[1].split("</p>")[0]
    box.clock.advance(UNUSED_DAYS * DAY_S)
    alice = box.login("alice")
    assert "sam (90 days)" in _page(alice).split('id="unused-accounts">')[1].split("</p>")[0]
