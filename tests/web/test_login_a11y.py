"""The login page as a keyboard and a screen reader meet it after a wrong password: the
keyboard on Password, where the person types again, the message still announced."""

import re


def _autofocused(text):
    return re.findall(r'<input id="(\w+)"[^>]* autofocus[ >]', text)


def test_a_wrong_password_puts_the_keyboard_on_password(box, people):
    """The page came back with the keyboard on User name, filled in already: the person
    tabbed past it to type the password again."""
    client = box.client()
    assert _autofocused(client.get("/login").get_data(as_text=True)) == ["name"]
    resp = box.try_login(client, "sam", "not his password")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert _autofocused(text) == ["password"], text
    assert re.search(r'<p class="error" role="alert" id="form-error">Wrong user name or password.</p>', text)
    assert 'value="sam"' in text
    # No name given: the keyboard stays on User name.
    nameless = box.try_login(box.client(), "", "not a password").get_data(as_text=True)
    assert _autofocused(nameless) == ["name"], nameless
