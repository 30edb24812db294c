"""Fixtures: a web app around fakes and a small simulated box.

The status, recordings and clock are fakes (test instruments); the call
search, key store and audit trail are the real ones, on a temporary data
directory with a cheap Argon2 cost."""

import pytest

from support.web import (
    Box,
)


@pytest.fixture
def box(tmp_path):
    b = Box(tmp_path)
    yield b
    b.close()


@pytest.fixture
def people(box):
    """A set-up box with one user per role: ivan (installer), sam (supervisor,
    lines 1-2), sue (supervisor, line 3), audrey (auditor); alice is the admin."""
    admin = box.do_setup()
    box.add_user(admin, "ivan", ["installer"])
    box.add_user(admin, "sam", ["supervisor"], [1, 2])
    box.add_user(admin, "sue", ["supervisor"], [3])
    box.add_user(admin, "audrey", ["auditor"])
    return {
        "alice": admin,
        "ivan": box.login("ivan"),
        "sam": box.login("sam"),
        "sue": box.login("sue"),
        "audrey": box.login("audrey"),
    }
