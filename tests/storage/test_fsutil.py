import ctypes
import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from firmware.storage import fsutil
from firmware.storage.fsutil import (
    append_durable,
    atomic_write,
    fsync_dir,
    make_private_dir,
    remove_durable,
    remove_stale_temps,
)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_creates_and_replaces(tmp_path):
    path = tmp_path / "config.json"
    atomic_write(path, b"one")
    assert path.read_bytes() == b"one"
    atomic_write(str(path), b"two, longer")
    assert path.read_bytes() == b"two, longer"
    assert os.listdir(tmp_path) == ["config.json"]


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_atomic_write_mode_ignores_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "f", b"x", mode=mode)
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "f") == mode


def test_atomic_write_order_is_write_fsync_rename_fsync_dir(tmp_path, monkeypatch):
    """The crash-safety recipe, step by step, recorded by spies on os."""
    calls = []
    real = {name: getattr(os, name) for name in ("write", "fsync", "replace")}
    monkeypatch.setattr(os, "write", lambda fd, d: calls.append("write") or real["write"](fd, d))
    monkeypatch.setattr(
        os,
        "fsync",
        lambda fd: (
            calls.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
            or real["fsync"](fd)
        ),
    )
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append("rename") or real["replace"](a, b))
    atomic_write(tmp_path / "f", b"data")
    assert calls == ["write", "fsync file", "rename", "fsync dir"]


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_failed_atomic_write_keeps_old_file_and_no_temp(tmp_path, monkeypatch, failing):
    path = tmp_path / "keys.json"
    atomic_write(path, b"old content")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError):
        atomic_write(path, b"new content that never lands")
    monkeypatch.undo()
    assert path.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["keys.json"]


def test_atomic_write_survives_short_writes(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    atomic_write(tmp_path / "f", b"0123456789" * 5)
    monkeypatch.undo()
    assert (tmp_path / "f").read_bytes() == b"0123456789" * 5


def test_atomic_write_needs_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "f", b"x")


def test_killed_writer_never_leaves_a_half_written_file(tmp_path):
    """kill -9 a process rewriting a file in a loop: the file is always one whole version."""
    path = tmp_path / "state"
    versions = {bytes([i]) * (4096 * (1 + i % 7)) for i in range(256)}
    script = textwrap.dedent("""
        import sys
        from firmware.storage.fsutil import atomic_write
        path = sys.argv[1]
        i = 0
        while True:
            atomic_write(path, bytes([i % 256]) * (4096 * (1 + (i % 256) % 7)))
            if i == 3:
                print("writing", flush=True)
            i += 1
    """)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-c", script, str(path)], env=env, stdout=subprocess.PIPE)
        assert child.stdout.readline() == b"writing\n"
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert path.read_bytes() in versions
        remove_stale_temps(tmp_path)
        assert os.listdir(tmp_path) == ["state"]


def test_append_durable_writes_everything_and_syncs(tmp_path, monkeypatch):
    synced = []
    real_write, real_sync = os.write, os.fdatasync
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:5])))
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd) or real_sync(fd))
    fd = os.open(tmp_path / "audio", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        append_durable(fd, b"first chunk|")
        append_durable(fd, memoryview(b"second chunk"))
    finally:
        os.close(fd)
    assert (tmp_path / "audio").read_bytes() == b"first chunk|second chunk"
    assert synced == [fd, fd]


def test_remove_durable(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    remove_durable(tmp_path / "f")
    assert not (tmp_path / "f").exists()
    remove_durable(tmp_path / "f")  # already gone: fine


def test_fsync_dir_refuses_a_missing_directory(tmp_path):
    fsync_dir(tmp_path)
    with pytest.raises(OSError):
        fsync_dir(tmp_path / "nope")


def test_make_private_dir(tmp_path):
    target = tmp_path / "a" / "b" / "keys"
    make_private_dir(target)
    assert target.is_dir() and mode_of(target) == 0o700
    make_private_dir(target)  # idempotent
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(FileExistsError):
        make_private_dir(tmp_path / "file")


def test_remove_stale_temps_only_removes_temps(tmp_path):
    (tmp_path / "keystore.json").write_bytes(b"keep")
    (tmp_path / ".keystore.json.0a1b2c3d4e5f.tmp").write_bytes(b"half")
    (tmp_path / "notes.tmp").write_bytes(b"not ours")
    assert remove_stale_temps(tmp_path) == [".keystore.json.0a1b2c3d4e5f.tmp"]
    assert sorted(os.listdir(tmp_path)) == ["keystore.json", "notes.tmp"]
    assert fsutil.TEMP_SUFFIX == ".tmp"


def test_data_mode_is_private_unless_the_umask_shares_with_the_group(tmp_path):
    """The two services run with umask 0007 and share the data dir through their group."""
    from firmware.storage.fsutil import atomic_write, create_db_file, data_mode, process_umask

    old = os.umask(0o022)
    try:
        assert process_umask() == 0o022
        assert (data_mode(), data_mode(directory=True)) == (0o600, 0o700)
        os.umask(0o007)
        assert (data_mode(), data_mode(directory=True)) == (0o660, 0o770)
        atomic_write(tmp_path / "shared", b"x")
        create_db_file(tmp_path / "calls.db")
        create_db_file(tmp_path / "calls.db")  # an existing file is left alone
        make_private_dir(tmp_path / "d")
        assert mode_of(tmp_path / "shared") == mode_of(tmp_path / "calls.db") == 0o660
        assert mode_of(tmp_path / "d") == 0o770
        os.umask(0o077)
        assert data_mode() == 0o600
    finally:
        os.umask(old)


def test_write_back_starts_every_file_before_it_waits_for_any(tmp_path, monkeypatch):
    """All the files' write-back in flight at once: ext4 then allocates every file's
    blocks in the same journal transaction (the hold-up path's shared sync)."""
    assert fsutil._libc_sync_file_range()  # Linux has it (the box's only system)
    calls = []
    monkeypatch.setattr(fsutil, "_sync_file_range", lambda fd, off, n, flags: calls.append((fd, flags)) or 0)
    fds = [os.open(tmp_path / ("f%d" % i), os.O_WRONLY | os.O_CREAT, 0o600) for i in range(3)]
    try:
        fsutil.write_back(fds)
    finally:
        for fd in fds:
            os.close(fd)
    assert calls == [(fd, 2) for fd in fds] + [(fd, 4) for fd in fds]  # WRITE all, then WAIT_AFTER all


def test_write_back_is_only_a_hint(tmp_path, monkeypatch):
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"kept")
        fsutil.write_back([fd, 987654])  # a bad descriptor: nothing raised
        monkeypatch.setattr(fsutil, "_sync_file_range", False)  # no such call here
        fsutil.write_back([fd])
    finally:
        os.close(fd)
    assert path.read_bytes() == b"kept"


def _spy_syncs(monkeypatch, calls):
    real_fsync, real_fdatasync = os.fsync, os.fdatasync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append("fdatasync") or real_fdatasync(fd))


def test_create_with_next_commit_writes_it_out_without_a_sync_of_its_own(tmp_path, monkeypatch):
    """The key copy of a new recording: its pages written out (ext4 allocates its block in
    the transaction running now), no commit of its own; the next sync carries it."""
    calls = []
    real = fsutil._libc_sync_file_range()
    monkeypatch.setattr(
        fsutil, "_sync_file_range", lambda fd, off, n, flags: calls.append(flags) or real(fd, off, n, flags)
    )
    _spy_syncs(monkeypatch, calls)
    old = os.umask(0o022)
    try:
        fsutil.create_with_next_commit(tmp_path / "k", b"wrapped key", mode=0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "k").read_bytes() == b"wrapped key" and mode_of(tmp_path / "k") == 0o600
    assert calls == [2, 4]  # WRITE, then WAIT_AFTER; no fsync, no fdatasync


@pytest.mark.parametrize("hint", [False, "fails"])
def test_create_with_next_commit_syncs_the_file_itself_without_the_hint(tmp_path, monkeypatch, hint):
    calls = []
    monkeypatch.setattr(fsutil, "_sync_file_range", hint and (lambda fd, off, n, flags: -1))
    _spy_syncs(monkeypatch, calls)
    fsutil.create_with_next_commit(tmp_path / "k", b"wrapped key")
    assert (tmp_path / "k").read_bytes() == b"wrapped key" and calls == ["fdatasync"]


def test_create_with_next_commit_never_touches_a_file_there_and_leaves_nothing_on_failure(
    tmp_path, monkeypatch
):
    path = tmp_path / "k"
    path.write_bytes(b"the copy there")
    with pytest.raises(FileExistsError):
        fsutil.create_with_next_commit(path, b"another")
    assert path.read_bytes() == b"the copy there"

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError):
        fsutil.create_with_next_commit(tmp_path / "new", b"wrapped key")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["k"]


def test_reserve_allocates_room_past_the_end_until_it_is_released(tmp_path):
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, b"h" * 100)
        assert fsutil.reserve(fd, 100, 256 * 1024)
        assert os.fstat(fd).st_size == 100  # the size is the file's own
        assert os.fstat(fd).st_blocks * 512 >= 256 * 1024
        os.write(fd, b"x" * 5000)  # written into the room
        fsutil.release_reserve(fd)
        assert os.fstat(fd).st_size == 5100
        assert os.fstat(fd).st_blocks * 512 <= 8192
    finally:
        os.close(fd)
    assert path.read_bytes() == b"h" * 100 + b"x" * 5000


def test_reserve_on_a_full_disk_raises_and_keeps_nothing(tmp_path):
    assert os.geteuid() == 0, "this test mounts a tmpfs and needs root"
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    try:
        fd = os.open(disk / "f", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"h" * 100)
            with pytest.raises(OSError) as caught:
                fsutil.reserve(fd, 100, 4 << 20)
            assert caught.value.errno == errno.ENOSPC
            assert os.fstat(fd).st_blocks * 512 <= 4096
        finally:
            os.close(fd)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.parametrize("err", [errno.EOPNOTSUPP, errno.ENOSYS])
def test_reserve_says_so_where_the_file_system_cannot(tmp_path, monkeypatch, err):
    def unsupported(fd, mode, offset, length):
        ctypes.set_errno(err)
        return -1

    monkeypatch.setattr(fsutil, "_libc_fallocate", lambda: unsupported)
    with open(tmp_path / "f", "wb") as f:
        assert fsutil.reserve(f.fileno(), 0, 4096) is False
    monkeypatch.setattr(fsutil, "_libc_fallocate", lambda: False)  # no such call at all
    with open(tmp_path / "f", "wb") as f:
        assert fsutil.reserve(f.fileno(), 0, 4096) is False


def test_atomic_write_in_one_commit_writes_out_renames_then_syncs_the_directory(tmp_path, monkeypatch):
    """The audit head, rewritten after every commit: no sync of the temporary file of
    its own (one commit of ext4's journal, the directory's, carries it and the rename)."""
    calls = []
    real = fsutil._libc_sync_file_range()
    monkeypatch.setattr(
        fsutil, "_sync_file_range", lambda fd, off, n, flags: calls.append(flags) or real(fd, off, n, flags)
    )
    _spy_syncs(monkeypatch, calls)
    real_replace, real_dir = os.replace, fsutil.fsync_dir
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append("rename") or real_replace(a, b))
    monkeypatch.setattr(fsutil, "fsync_dir", lambda d: calls.append("fsync_dir") or real_dir(d))
    (tmp_path / "head").write_bytes(b"old")
    fsutil.atomic_write(tmp_path / "head", b"new head", one_commit=True)
    assert (tmp_path / "head").read_bytes() == b"new head"
    assert calls == [2, 4, "rename", "fsync_dir", "fsync"]  # the last one is the directory's
    assert [p.name for p in tmp_path.iterdir()] == ["head"]


def test_atomic_write_in_one_commit_syncs_the_file_itself_without_the_hint(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(fsutil, "_sync_file_range", False)
    _spy_syncs(monkeypatch, calls)
    real_dir = fsutil.fsync_dir
    monkeypatch.setattr(fsutil, "fsync_dir", lambda d: calls.append("fsync_dir") or real_dir(d))
    fsutil.atomic_write(tmp_path / "head", b"new head", one_commit=True)
    assert (tmp_path / "head").read_bytes() == b"new head"
    assert calls == ["fsync", "fsync_dir", "fsync"]


def test_atomic_write_without_the_directory_sync_leaves_the_commit_to_the_next_one(tmp_path, monkeypatch):
    """The line check at the box's stop: written out and renamed, no sync of its own;
    the clean-stop mark's commit, just after, carries it."""
    calls = []
    real = fsutil._libc_sync_file_range()
    monkeypatch.setattr(
        fsutil, "_sync_file_range", lambda fd, off, n, flags: calls.append(flags) or real(fd, off, n, flags)
    )
    _spy_syncs(monkeypatch, calls)
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append("rename") or real_replace(a, b))
    monkeypatch.setattr(fsutil, "fsync_dir", lambda d: calls.append("fsync_dir"))
    (tmp_path / "check").write_bytes(b"old")
    fsutil.atomic_write(tmp_path / "check", b"new check", sync_dir=False)
    assert (tmp_path / "check").read_bytes() == b"new check"
    assert calls == [2, 4, "rename"]  # its content on the device before the new name
    assert [p.name for p in tmp_path.iterdir()] == ["check"]
    # Without the write-out the file is synced on its own: a name never without its content.
    calls.clear()
    monkeypatch.setattr(fsutil, "_sync_file_range", False)
    fsutil.atomic_write(tmp_path / "check", b"newer", sync_dir=False)
    assert calls == ["fsync", "rename"] and (tmp_path / "check").read_bytes() == b"newer"


def test_overwrite_in_place_writes_whole_sectors_direct_and_readers_see_them(tmp_path, monkeypatch):
    path = tmp_path / "head"
    path.write_bytes(b"a" * 512)
    assert path.read_bytes() == b"a" * 512  # in the page cache now
    opened, synced = [], []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, flags, *a: opened.append(flags) or real_open(p, flags, *a))
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd))
    assert fsutil.overwrite_in_place(path, b"b" * 512) is True
    # The sector itself, durable when written (O_DSYNC): no page, no sync of its own.
    assert any(f & os.O_DIRECT and f & os.O_DSYNC for f in opened) and synced == []
    assert path.read_bytes() == b"b" * 512  # not the cached page


def test_overwrite_in_place_writes_through_the_page_cache_where_direct_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "head"
    path.write_bytes(b"a" * 512)
    real_open, synced = os.open, []

    def open_(p, flags, *a):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "no direct I/O here")
        return real_open(p, flags, *a)

    monkeypatch.setattr(os, "open", open_)
    real_sync = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd) or real_sync(fd))
    assert fsutil.overwrite_in_place(path, b"c" * 512) is True
    assert path.read_bytes() == b"c" * 512 and len(synced) == 1


def test_overwrite_in_place_keeps_the_file_and_refuses_another_size(tmp_path):
    path = tmp_path / "head"
    assert fsutil.overwrite_in_place(path, b"abcd") is False and not path.exists()
    path.write_bytes(b"1234")
    inode = path.stat().st_ino
    assert fsutil.overwrite_in_place(path, b"abcd") is True
    assert path.read_bytes() == b"abcd" and path.stat().st_ino == inode
    assert fsutil.overwrite_in_place(path, b"abcde") is False and path.read_bytes() == b"abcd"
    # The start of a longer file, when its size is the one given.
    assert fsutil.overwrite_in_place(path, b"xy", file_bytes=3) is False
    assert fsutil.overwrite_in_place(path, b"xy", file_bytes=4) is True and path.read_bytes() == b"xycd"


def _fat_chmod(monkeypatch):
    """os.fchmod as on a FAT stick mounted without ``quiet``: a mode the file system
    cannot hold is refused with EPERM, even for the file's maker."""

    def fchmod(fd, mode):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "fchmod", fchmod)


@pytest.mark.parametrize("write", ["atomic_write", "write_new", "write_new_without_links"])
def test_a_file_written_to_a_stick_that_cannot_hold_its_mode_is_written_all_the_same(
    tmp_path, monkeypatch, write
):
    _fat_chmod(monkeypatch)
    path = tmp_path / "backup.lkks"
    if write == "write_new_without_links":

        def link(*args, **kwargs):
            raise PermissionError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", link)
        write = "write_new"
    getattr(fsutil, write)(path, b"sealed", mode=0o600)
    assert path.read_bytes() == b"sealed"
    assert [p.name for p in tmp_path.iterdir()] == ["backup.lkks"]


def test_a_bundle_spooled_to_a_stick_that_cannot_hold_its_mode_is_made(tmp_path, monkeypatch):
    from firmware.sarbundle import FileSpool

    _fat_chmod(monkeypatch)
    spool = FileSpool(tmp_path / "bundle.zip")
    spool.write(b"zip")
    spool.commit()
    assert (tmp_path / "bundle.zip").read_bytes() == b"zip"


def test_the_secrets_locks_are_shared_again_at_a_service_start(tmp_path):
    """mail.json.lock (Settings saves, the mail round's re-seal) and archive.secret.lock
    (`archive set-secret`, the uploads' re-seal) are taken by both services: one made 0600
    (a command run by hand as the box's user, outside its umask) is given the box's data
    mode at the next start of its owner, as every file both services use is; else the
    other service changes the file without the lock."""
    names = ("mail.json.lock", "archive.secret.lock")
    for name in names:
        (tmp_path / name).touch()
        os.chmod(tmp_path / name, 0o600)
    old = os.umask(fsutil.SHARED_UMASK)  # the appliance's services
    try:
        changed = fsutil.share_own_files(tmp_path)
    finally:
        os.umask(old)
    assert sorted(os.path.basename(p) for p in changed) == sorted(names)
    assert [mode_of(tmp_path / name) for name in names] == [0o660, 0o660]


@pytest.mark.parametrize("links", [True, False])
def test_a_spooled_file_made_at_its_name_meanwhile_is_kept(tmp_path, monkeypatch, links):
    """A person's file written as a stream was renamed over its name at the end: a file
    made there while it was written (by something else) was replaced. It is kept, and
    the spool refused, on a stick without hard links too."""
    from firmware.sarbundle import FileSpool

    if not links:

        def link(*args, **kwargs):
            raise PermissionError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", link)
    out = tmp_path / "bundle.zip"
    spool = FileSpool(out)
    spool.write(b"the bundle")
    out.write_bytes(b"made meanwhile")
    with pytest.raises(FileExistsError) as raised:
        spool.commit()
    assert raised.value.filename == str(out)
    spool.discard()
    assert out.read_bytes() == b"made meanwhile" and [p.name for p in tmp_path.iterdir()] == ["bundle.zip"]
    # Its name free, it is put there.
    spool = FileSpool(tmp_path / "new.zip")
    spool.write(b"the bundle")
    spool.commit()
    assert (tmp_path / "new.zip").read_bytes() == b"the bundle"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.zip", "new.zip"]


def _no_links(monkeypatch):
    def link(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", link)


def _copied_in_place(monkeypatch):
    """Record each file a copy is written into, at its name, while it is written."""
    seen, real = [], fsutil._write_all

    def write_all(fd, data):
        seen.append(os.readlink("/proc/self/fd/%d" % fd))
        real(fd, data)

    monkeypatch.setattr(fsutil, "_write_all", write_all)
    return seen


def test_a_new_file_on_a_stick_without_hard_links_is_renamed_there_whole_never_copied(tmp_path, monkeypatch):
    """Where link(2) is refused (a FAT stick), the file was created at its name and the
    temporary file copied into it: seen part written meanwhile, and a cut left it so. It is
    renamed there in one step, by a rename that never replaces a file (vfat and exfat take
    RENAME_NOREPLACE), as link(2) never does."""
    _no_links(monkeypatch)
    copies = _copied_in_place(monkeypatch)
    fsutil.write_new(tmp_path / "report.pdf", b"the report", mode=0o600)
    assert (tmp_path / "report.pdf").read_bytes() == b"the report"
    tmp = tmp_path / ".bundle.zip.1.tmp"
    tmp.write_bytes(b"the bundle")
    inode = tmp.stat().st_ino
    fsutil.commit_new(str(tmp), str(tmp_path / "bundle.zip"))
    assert (tmp_path / "bundle.zip").stat().st_ino == inode and not tmp.exists()
    assert not [p for p in copies if not os.path.basename(p).startswith(".")], copies
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.zip", "report.pdf"]
    # A file there is kept, as link(2) keeps it.
    tmp.write_bytes(b"another bundle")
    with pytest.raises(FileExistsError):
        fsutil.commit_new(str(tmp), str(tmp_path / "bundle.zip"))
    assert (tmp_path / "bundle.zip").read_bytes() == b"the bundle" and tmp.read_bytes() == b"another bundle"
    with pytest.raises(FileExistsError):
        fsutil.write_new(tmp_path / "report.pdf", b"another report")
    assert (tmp_path / "report.pdf").read_bytes() == b"the report"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".bundle.zip.1.tmp", "bundle.zip", "report.pdf"]


def test_without_hard_links_nor_a_rename_that_never_replaces_a_new_file_is_copied(tmp_path, monkeypatch):
    """A file system that refuses RENAME_NOREPLACE (EINVAL: a FUSE one): created with O_EXCL
    and copied, as before."""
    import ctypes

    _no_links(monkeypatch)
    copies = _copied_in_place(monkeypatch)

    def renameat2(*args):
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(fsutil, "_renameat2", renameat2)
    tmp = tmp_path / ".bundle.zip.1.tmp"
    tmp.write_bytes(b"the bundle")
    fsutil.commit_new(str(tmp), str(tmp_path / "bundle.zip"))
    assert (tmp_path / "bundle.zip").read_bytes() == b"the bundle" and not tmp.exists()
    assert copies == [str(tmp_path / "bundle.zip")]


def _copy_forced(monkeypatch):
    """No hard links, and a rename that never replaces refused too (EINVAL: a FUSE file
    system): :func:`fsutil.commit_new` copies into a file it creates at the name."""
    import ctypes

    _no_links(monkeypatch)

    def renameat2(*args):
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(fsutil, "_renameat2", renameat2)


def _failing_write(monkeypatch, after, exc):
    """``_write_all`` writes ``after`` chunks, then raises ``exc``."""
    real, calls = fsutil._write_all, []

    def write_all(fd, data):
        calls.append(1)
        if len(calls) > after:
            raise exc
        real(fd, data)

    monkeypatch.setattr(fsutil, "_write_all", write_all)


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_copy_that_fails_part_way_leaves_no_file_at_the_name(tmp_path, monkeypatch, exc):
    _copy_forced(monkeypatch)
    _failing_write(monkeypatch, 1, exc)  # the first MiB written, then the card is full (or Ctrl-C)
    tmp = tmp_path / ".bundle.zip.1.tmp"
    tmp.write_bytes(b"x" * (3 << 20))
    with pytest.raises(type(exc)):
        fsutil.commit_new(str(tmp), str(tmp_path / "bundle.zip"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".bundle.zip.1.tmp"]
    assert tmp.stat().st_size == 3 << 20


def test_a_copy_whose_part_cannot_be_removed_says_so(tmp_path, monkeypatch):
    """A card gone read-only part way: the part copied stays, and the error said only that
    the file system is read-only (the removal's error, the copy's lost with it)."""
    _copy_forced(monkeypatch)
    _failing_write(monkeypatch, 1, OSError(errno.EIO, "Input/output error"))
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if os.path.basename(path) == "bundle.zip":
            raise OSError(errno.EROFS, "Read-only file system", path)
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    tmp = tmp_path / ".bundle.zip.1.tmp"
    tmp.write_bytes(b"x" * (3 << 20))
    with pytest.raises(OSError) as raised:
        fsutil.commit_new(str(tmp), str(tmp_path / "bundle.zip"))
    assert raised.value.errno == errno.EIO and raised.value.filename == str(tmp_path / "bundle.zip")
    assert raised.value.strerror == (
        "Input/output error; part of %s is left there, not removed (Read-only file system)"
        % (tmp_path / "bundle.zip")
    )
