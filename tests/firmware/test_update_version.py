"""Release versions put in order (firmware/update/version.py)."""

import pytest

from firmware.errors import UpdateError
from firmware.update.version import release_key

IN_ORDER = [
    "0.9.12",
    "1.2.0",
    "1.10.0-rc.1",
    "1.10.0-rc.2",
    "1.10.0~rc10",
    "1.10.0",
    "1.10.0+hotfix2",
    "1.10.0+hotfix10",
    "1.10.1",
    "2.0.0",
]


def test_release_versions_sort_as_a_technician_reads_them():
    assert sorted(IN_ORDER, key=release_key) == IN_ORDER
    assert sorted(reversed(IN_ORDER), key=release_key) == IN_ORDER


def test_the_same_version_is_equal():
    assert release_key("1.4.0") == release_key("1.4.0")


def test_a_suffix_s_words_compare_whatever_their_case():
    # One release written two ways is the same release (a reinstall), not an older one;
    # before, every capital came before every small letter: 2.0.0~RC2 was older than ~rc1.
    assert release_key("2.0.0~RC1") == release_key("2.0.0~rc1")
    assert release_key("2.0.0~RC2") > release_key("2.0.0~rc1")
    assert release_key("2.0.0-Beta.1") < release_key("2.0.0~rc1") < release_key("2.0.0")
    assert release_key("2.0.0+Hotfix1") == release_key("2.0.0+hotfix1")


@pytest.mark.parametrize("text", ["", "1.4", "v1.4.0", "1.4.0 ", "1.4.0-", "latest", None, 140])
def test_a_version_that_is_not_a_release_is_refused_by_name(text):
    with pytest.raises(UpdateError, match="is not a release version like 1.4.0"):
        release_key(text)


def test_one_release_written_two_ways_is_the_same_release():
    from firmware.update.version import same_release

    assert same_release("1.4.0~RC1", "1.4.0~rc1")
    assert not same_release("1.4.0", "1.4.1") and not same_release("1.4.0", "1.4.0+hotfix1")
    assert same_release("latest", "latest") and not same_release("latest", "1.4.0")
