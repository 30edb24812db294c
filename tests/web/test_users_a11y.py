"""The Users page as a screen reader reads it: every tick box of a user's row named with
the user, so that a list of the page's fields tells one row's from another's."""

import re

from support.web import page


def _names(row, field):
    """The accessible names of the tick boxes ``field`` in ``row``: aria-label, else the
    label's text around it."""
    names = []
    for m in re.finditer(r'<label><input type="checkbox" name="%s"([^>]*)>([^<]*)</label>' % field, row):
        label = re.search(r'aria-label="([^"]*)"', m.group(1))
        names.append(label.group(1) if label else m.group(2).strip())
    return names


def test_each_role_tick_box_is_named_with_its_user(box, people):
    """A row's roles were named "Supervisor", "Auditor"... alone: every row's alike in a
    screen reader's list of fields (the lines' were "Line 1 for sam")."""
    text = page(people["ivan"], "/users")
    for name in ("sam", "sue", "audrey"):
        row = re.search(r'<tr id="user-%s">.*?</tr>' % name, text, re.S).group(0)
        roles = _names(row, "roles")
        assert roles and all(r.endswith(" for %s" % name) for r in roles), roles
        assert "Supervisor for %s" % name in roles, roles
        assert _names(row, "lines")[0] == "Line 1 for %s" % name
