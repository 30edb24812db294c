"""Fixtures shared by the whole suite."""

import pytest

# Folders whose tests share something - the session's S3 server, slow to start:
# on parallel workers (`make test`) each of these folders runs on one worker, one
# test at a time. Every other test file is a group of its own, so its module
# fixtures are built once (as with `--dist loadfile`). Test servers listen on
# ports found free (tests/support/ports.py), so no test needs a port of its own.
#
# tests/system is not one of them: its files share nothing (each update test's box
# has a D-Bus of its own and takes free loop devices; the booted appliance is a
# container on a copy of its root). As one group they took ~20 minutes of one
# worker; split, they did not shorten the run on two cores (5 028 tests in 21:43
# grouped, 5 130 in 22:04 split). What bound it was the disk: its tests wait on
# the box's syncs. With the files on a file system in memory (`make test`,
# scripts/memdisk) 5 187 tests took 10:32 on the same machine.
SHARED_FOLDERS = ("archive",)


def test_group(nodeid):
    """The group of the test ``nodeid`` (``tests/FOLDER/...::name``): the folder for
    :data:`SHARED_FOLDERS`, else the test's file."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    return parts[1] if len(parts) > 2 and parts[1] in SHARED_FOLDERS else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With ``--dist loadgroup``, group the tests by :func:`test_group`.

    Optional: where pytest-xdist is not installed (the arm64 rig's pytest) the
    hook is never called, and pytest must not reject it as unknown.

    pytest-xdist's own loadgroup reads ``xdist_group`` marks by renaming each
    test's node id, which pytest 9 no longer allows, so every test ran alone;
    this scheduler groups by the node id as it is.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    # The groups go out in the order pytest_collection_modifyitems left them, not
    # re-sorted by how many tests each holds.
    config.option.loadscopereorder = False

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return test_group(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """The groups (:func:`test_group`) that hold a slow test first, then the rest, each
    lot the groups of most tests first, so the workers start on the long groups.

    The workers take groups in this order as each finishes one; a long group handed out
    last could keep one worker busy after the other ran out of tests. xdist's own order,
    by the number of tests alone, put the crash tests (a few tests, minutes each) near
    the end. (On one run's durations the two orders came out within a few seconds of
    each other: the many short groups fill in either way.)"""
    groups = {}
    for index, item in enumerate(items):
        group = groups.setdefault(test_group(item.nodeid), {"first": index, "count": 0, "slow": False})
        group["count"] += 1
        group["slow"] = group["slow"] or item.get_closest_marker("slow") is not None

    def order(pair):
        index, item = pair
        group = groups[test_group(item.nodeid)]
        return (not group["slow"], -group["count"], group["first"], index)

    items[:] = [item for _index, item in sorted(enumerate(items), key=order)]


@pytest.fixture(scope="session")
def speech_cache(tmp_path_factory):
    """One espeak-ng cache for the session, so each sentence is synthesised once."""
    return tmp_path_factory.mktemp("speech-cache")


@pytest.fixture(scope="session")
def synth(speech_cache):
    from board.sim.speech import SpeechSynth

    return SpeechSynth(cache_dir=str(speech_cache))


@pytest.fixture(autouse=True)
def _keep_the_umask():
    """Tests run `linekeeper` in-process, and its main() narrows the umask to 077 (the
    box's data is private): give each test back the umask it started with."""
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    yield
    os.umask(mask)


@pytest.fixture(scope="session", autouse=True)
def _the_test_machines_disk_is_not_the_card(tmp_path_factory):
    """The box's disk alarms read how full the data folder's filesystem is. A test's
    data folder is on the test machine's own disk, whose fill is nobody's test: on a
    machine over 80% full every box raised ``disk_warning`` and the tests that count
    alarms failed. There the sweeper sees a half-full card; a filesystem a test made
    itself (a tmpfs, a loop device) is read as it is. For the whole session, as module
    fixtures start boxes before any test's own fixtures run."""
    import os
    import shutil
    import tempfile

    from firmware.policy.sweeper import RetentionSweeper

    machine = {os.stat(p).st_dev for p in (tempfile.gettempdir(), tmp_path_factory.getbasetemp())}

    def usage(path):
        total, used, free = shutil.disk_usage(path)
        if os.stat(path).st_dev not in machine:
            return total, used, free
        return total, total // 2, total - total // 2

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(RetentionSweeper.__init__.__kwdefaults__, "disk_usage", usage)
        yield


@pytest.fixture(autouse=True)
def no_appliance_run_dir(monkeypatch, tmp_path_factory):
    """The box's run directory (/run/linekeeper) as not there, whatever the machine has:
    on a box that runs the appliance, a command under test would otherwise take its
    recorder's keys (firmware.signing.run_dir). A test of that lookup points it elsewhere."""
    from firmware import signing

    missing = tmp_path_factory.getbasetemp() / "no-run-linekeeper"
    monkeypatch.setattr(signing, "APPLIANCE_RUN_DIR", str(missing))
