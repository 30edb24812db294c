"""Fixtures: a web app around fakes and a small simulated box.

The status, recordings and clock are fakes (test instruments); the call
search, key store and audit trail are the real ones, on a temporary data
directory with a cheap Argon2 cost."""

import pytest

from support.web import Box, PeopleTemplate


@pytest.fixture(scope="session")
def people_template(tmp_path_factory):
    """A box set up once, with its people (copied into each test's box)."""
    return PeopleTemplate(tmp_path_factory.mktemp("people-template"))


@pytest.fixture
def box(tmp_path, request):
    """A new box; already set up, with its people logged in, when the test also
    asks for ``people``."""
    if "people" in request.fixturenames:
        b, request.node.people_clients = request.getfixturevalue("people_template").box(tmp_path)
    else:
        b = Box(tmp_path)
    yield b
    b.close()


@pytest.fixture
def people(box, request):
    """A set-up box with one user per role: ivan (installer), sam (supervisor,
    lines 1-2), sue (supervisor, line 3), audrey (auditor); alice is the admin.
    Each is a logged-in test client."""
    return request.node.people_clients
