"""Two real users in one group, as the appliance runs its services (docs/appliance.md):
the recorder (linekeeper-rec) and the web UI (linekeeper-web), both in group linekeeper
with umask 0007. The tests otherwise run everything as one user, where a file one
service makes 0600 and the other must read cannot show."""

import codecs
import contextlib
import os
import pathlib
import shutil
import tempfile
import traceback

RECORDER, WEB, GROUP = 60001, 60002, 60000


def as_user(uid, fn, gid=GROUP):
    """Run ``fn()`` in a child process as ``uid``/``gid`` with umask 0007; returns its
    exit status, 0 when ``fn`` returned (what it raised is printed)."""
    codecs.lookup("ascii")  # found now: the child may not read every folder imports look in
    codecs.lookup("utf-8")
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.umask(0o007)
            fn()
            os._exit(0)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@contextlib.contextmanager
def shared_data_dir():
    """A data directory as linekeeper.tmpfiles makes it: 2770, the recorder's, the group's."""
    top = tempfile.mkdtemp()  # pytest's own folder is root's alone (0700)
    try:
        os.chmod(top, 0o755)
        data = pathlib.Path(top) / "data"
        data.mkdir()
        os.chown(data, RECORDER, GROUP)
        os.chmod(data, 0o2770)
        yield data
    finally:
        shutil.rmtree(top)
