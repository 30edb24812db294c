"""Instruments for the recording-policy acceptance tests (issue 6).

The ``lab`` fixture is a :class:`PolicyLab`: it runs scenarios end to end
through ``linekeeper sim`` (the command's own code, in this process), reads
the call log back with ``linekeeper calls --json``, decodes recordings with
the box's key, renders what was on a line (the simulated truth, as the box
captured it) and measures tones and levels in the decoded audio."""

import pytest

from support.policy_lab import (
    PolicyLab,
)


@pytest.fixture
def lab(tmp_path, synth):
    return PolicyLab(tmp_path, synth)


@pytest.fixture(scope="module")
def module_lab(tmp_path_factory, synth):
    """A :class:`PolicyLab` shared by one module's tests (for one expensive run)."""
    return PolicyLab(tmp_path_factory.mktemp("policy"), synth)
