"""Crash-safe file writes for an SD card that can lose power at any moment.

Rules this module encodes:

- A file that is replaced is never rewritten in place: the new content goes to
  a temporary file in the same directory, which is fsynced and then renamed
  over the old name, and the directory is fsynced so the rename itself
  survives a power cut. Readers see the old file or the new one, never a mix.
- A new file (a person's export, report or copy) never replaces a file at its
  name, even one made while it was written: it is written and synced under a
  temporary name, then linked in place (:func:`write_new`, :func:`commit_new`),
  or on a file system without hard links (a FAT stick) renamed there by a
  rename that never replaces a file: a cut leaves it whole or not there.
- Appends are written completely and then ``fdatasync``-ed before the caller
  is told they are done.
- Removing a file is durable only once its directory has been fsynced.

Temporary files are named ``.<name>.<random>.tmp``; :func:`remove_stale_temps`
deletes the ones a crash left behind.

Who may read the data: files are 0600 and directories 0700 (the box's user
alone), except when the process runs with umask 0007. That is how the two
services run on the box (``UMask=0007``): the recorder and the web UI are
different users in one group, and the data directory is theirs together, so
data files are 0660 and directories 0770 (:func:`data_mode`). Nobody else
ever gets a bit.
"""

import contextlib
import ctypes
import errno
import fcntl
import logging
import mmap
import os
import secrets
import stat
import threading

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
SHARED_UMASK = 0o007
_umask_lock = threading.Lock()


def process_umask():
    """This process's umask (read without changing it where Linux says it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def data_mode(directory=False):
    """Permission bits for the box's data: 0600 / 0700, or 0660 / 0770 for the
    services' shared group (umask 0007; see the module docstring)."""
    shared = process_umask() == SHARED_UMASK
    if directory:
        return 0o770 if shared else 0o700
    return 0o660 if shared else 0o600


# What both services use, each made by one of them (docs/appliance.md): older releases
# made some of these 0600 or left their mode to SQLite, which the other service then
# could not open.
SHARED_FILES = (
    "signing.key",
    "secrets.key",
    "mail.json",
    "mail.json.lock",  # Settings saves, the web UI's re-seal of the password (firmware/mail/settings.py)
    "mail-accounts.json",  # the alarm recipients' accounts (firmware/mail/settings.py)
    "mail-box-url.json",  # the box's address that alarm mails give (firmware/mail/settings.py)
    "mail-sender.json",  # a sender with its display name (firmware/mail/settings.py)
    "mail/queue/*.json",
    "mail/queue.lock",  # the queue's changes, one process at a time (firmware/mail/queue.py)
    "mail/alarm-rate.json",  # the alarm mails' rate windows, kept by whichever raises
    "mail/alarm-rate.json.lock",
    "web.db*",
    "alarms.db*",
    "rights.db*",  # the web UI's register; the recorder reads it for request_overdue
    "archive-queue.db*",
    "archive.secret.lock",  # `archive set-secret`, the web UI's re-seal (firmware/archive/queue.py)
    "alarm-inbox",
    "alarm-inbox/*.json",
)


def share_own_files(data_dir):
    """Give the shared files this process owns in ``data_dir`` the box's data mode, on the
    appliance only (umask 0007); returns the paths changed. Each service runs it at its
    start, so a box updated from a release that made them 0600 works again. Nothing
    reached through a link is touched (the other service could plant one)."""
    import glob

    if process_umask() != SHARED_UMASK:
        return []
    top = os.path.realpath(os.fspath(data_dir))
    changed = []
    for pattern in SHARED_FILES:
        for path in glob.glob(os.path.join(top, pattern)):
            if os.path.realpath(path) != os.path.normpath(path):
                continue  # a link somewhere on the way: not the box's own file
            want = data_mode(directory=os.path.isdir(path))
            try:
                if _fix_mode(path, want):
                    changed.append(path)
            except OSError:
                continue  # gone meanwhile, or not ours to change: the other service's start
    return changed


def _fix_mode(path, want, owner=None):
    """Set ``path``'s mode to ``want`` (and its owner to ``owner``, ``(uid, gid)``) through a
    descriptor opened without following a link; True if anything changed. Only a
    file's own owner changes its mode (root changes any)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            return False
        if owner is None and st.st_uid != os.geteuid():
            return False
        done = False
        if owner is not None and (st.st_uid, st.st_gid) != owner:
            os.fchown(fd, *owner)
            done = True
        if st.st_mode & 0o7777 != want:
            os.fchmod(fd, want)
            done = True
        return done
    finally:
        os.close(fd)


def appliance_dir(data_dir):
    """Whether ``data_dir`` is shared by the box's services as on the appliance: setgid and
    the group's to read, write and enter (2770, linekeeper.tmpfiles)."""
    st = os.stat(data_dir)
    return bool(st.st_mode & stat.S_ISGID) and st.st_mode & 0o070 == 0o070


def hand_to_data_dir_owner(data_dir, paths):
    """Run as root (an installer's command, the updater), make ``paths`` (just written
    there) the data directory's, as if its services had made them: its owner and group,
    and on the appliance the services' shared mode, so that both can use them. A link
    is never followed (a service could plant one to have root hand over another file).
    Elsewhere nothing changes."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    st = os.stat(data_dir)
    shared = appliance_dir(data_dir)
    for p in paths:
        current = os.lstat(p)
        if stat.S_ISLNK(current.st_mode):
            raise OSError(errno.ELOOP, "a link, not the box's file: left as it is", p)
        if stat.S_ISDIR(current.st_mode):
            want = 0o2770 if shared else current.st_mode & 0o7777
        else:
            want = 0o660 if shared else current.st_mode & 0o7777
        _fix_mode(p, want, owner=(st.st_uid, st.st_gid))


def create_db_file(path):
    """Create an empty database file at ``path`` with :func:`data_mode`, if it is missing.

    SQLite makes new files 0644 less the umask, and its ``-wal`` and ``-shm``
    files copy the database file's mode, so the file is made here first with the
    box's own mode. Raises :class:`OSError`.
    """
    try:
        fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, data_mode())
    except FileExistsError:
        return
    try:
        os.fchmod(fd, data_mode())
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path, what, required=False):
    """Hold an exclusive ``flock`` on the lock file ``path`` for the ``with`` block: files
    that both services change (``what`` names them, for the log) are changed by one at a
    time. The lock file is made with the box's data mode (:func:`create_db_file`), so
    that both take it. One that cannot be made or opened (a full card, a link put there)
    is logged and the block runs unlocked: the change matters more than the lock. With
    ``required``, for a change that can wait (one that rewrites a file from what it read
    before, and unlocked could put it back over a change made meanwhile), it raises the
    :class:`OSError` instead and the block does not run."""
    try:
        create_db_file(path)
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        if required:
            raise
        log.warning("%s changed without a lock (%s)", what, exc)
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _write_all(fd, data):
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write less)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(path):
    """Make entries created, renamed or removed in directory ``path`` durable.

    Raises :class:`OSError` if the directory cannot be opened or synced.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# sync_file_range(2) flags (Linux); the os module does not offer the call itself.
_SYNC_FILE_RANGE_WRITE = 2
_SYNC_FILE_RANGE_WAIT_AFTER = 4
_sync_file_range = None  # libc's, once looked up; False where there is none


def _libc_function(names, argtypes):
    """The first of ``names`` the C library has, taking ``argtypes`` and returning an int
    (``errno`` kept for :func:`ctypes.get_errno`); False where it has none of them.

    (The C library the process already has: no lookup, no subprocess, in the capture
    thread where the first group sync or reservation calls this.)
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    for name in names:
        fn = getattr(libc, name, None)
        if fn is not None:
            fn.argtypes = argtypes
            fn.restype = ctypes.c_int
            return fn
    return False


def _libc_sync_file_range():
    global _sync_file_range
    if _sync_file_range is None:
        _sync_file_range = _libc_function(
            ("sync_file_range",), [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        )
    return _sync_file_range


def write_back(fds):
    """Send the dirty pages of every open file in ``fds`` to the device together, and
    wait until they are written (``sync_file_range``: start all, then wait for all).

    Only a hint, which makes nothing durable: each file still needs its
    ``fdatasync``. It is what lets those syncs share one commit of the file
    system's own journal: ext4 allocates a file's delayed blocks (and, on the
    completion of the write, marks them written) only when it writes the file
    back, each in the journal transaction running then; started together, every
    file's allocation is in the same transaction, which the first ``fdatasync``
    commits, and the others find nothing left to commit. Synced one after the
    other, each file's ``fdatasync`` commits a transaction of its own. Where the
    call is missing or fails (not Linux, a file system without it) nothing
    happens: the ``fdatasync`` calls do all the work, as before.
    """
    _write_out(fds)  # a failure only loses the hint


def _write_out(fds):
    """:func:`write_back`'s work; returns whether every call was made and succeeded."""
    fn = _libc_sync_file_range()
    if not fn:
        return False
    ok = True
    for flags in (_SYNC_FILE_RANGE_WRITE, _SYNC_FILE_RANGE_WAIT_AFTER):
        for fd in fds:
            ok = fn(fd, 0, 0, flags) == 0 and ok
    return ok


# fallocate(2) mode flag (Linux): allocate without changing the file's size.
_FALLOC_FL_KEEP_SIZE = 1
_fallocate = None  # libc's, once looked up; False where there is none


def _libc_fallocate():
    global _fallocate
    if _fallocate is None:
        # fallocate64 takes 64-bit offsets on 32-bit systems too (Raspberry Pi OS armhf)
        _fallocate = _libc_function(
            ("fallocate64", "fallocate"), [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        )
    return _fallocate


def reserve(fd, offset, length):
    """Allocate ``length`` bytes of the card for the open file ``fd`` from ``offset`` on,
    without changing its size (``fallocate`` with ``FALLOC_FL_KEEP_SIZE``).

    Writing there later cannot fail for want of space, so a writer that holds
    data in memory and writes it later learns that the disk is full now. The
    blocks stay the file's until :func:`release_reserve`. Returns False where
    the file system or the system cannot reserve (nothing was allocated).

    :raises OSError: ENOSPC (the disk is full; every block past the file's end
        is given back) or another failure of the call
    """
    fn = _libc_fallocate()
    if not fn:
        return False
    if fn(fd, _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return False
    try:  # ext4 keeps what it allocated before it ran out: give it back
        release_reserve(fd)
    except OSError:
        pass
    raise OSError(err, os.strerror(err))


def release_reserve(fd):
    """Give back the blocks :func:`reserve` allocated beyond the end of the open file
    ``fd``: it is cut to its own size (ext4 frees blocks past the end on any truncate).

    :raises OSError: the truncate failed
    """
    os.ftruncate(fd, os.fstat(fd).st_size)


def create_with_next_commit(path, data, mode=None):
    """Create the new file ``path`` holding ``data`` (bytes), durable with the file
    system's next commit rather than with one of its own.

    Its pages are written out and waited for (``sync_file_range``), so that ext4
    allocates its block, and records its size, in the journal transaction running
    now: the next commit of the file system's journal carries the new name and
    its content. The caller forces that commit by syncing a file it creates just
    after (a new file's sync must commit its own name and blocks): one commit for
    both where :func:`atomic_write` costs two of its own (the temporary file's
    sync, then the directory's after the rename). A journal commits its
    transactions in order, so that file is never on the card without this one.
    (A sync that changes no metadata, such as an ``fdatasync`` of a file
    rewritten in place, commits nothing and does not count.) Until then a crash
    may leave it empty: it is not atomic. Where that write-out cannot be done
    (``sync_file_range`` missing or failing), the file is synced on its own,
    durable at once. The file gets permission bits ``mode`` regardless of the
    umask (default: :func:`data_mode`).

    :raises FileExistsError: ``path`` exists (it is left as it is)
    :raises OSError: any other failure (the new file is removed)
    """
    path = os.fspath(path)
    if mode is None:
        mode = data_mode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            set_mode(fd, mode)
            _write_all(fd, data)
            if not _write_out([fd]):
                os.fdatasync(fd)
        finally:
            os.close(fd)
    except BaseException:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        raise


def atomic_write(path, data, mode=None, one_commit=False, sync_dir=True):
    """Replace the file at ``path`` with ``data`` (bytes) atomically and durably.

    After a crash the file holds either its old content or ``data``, never
    part of it. The file gets permission bits ``mode`` regardless of the
    umask (default: :func:`data_mode`). The directory must exist. Raises :class:`OSError` on failure, in
    which case the temporary file is removed and ``path`` is untouched.

    ``one_commit``: the temporary file is not synced on its own but written out
    and waited for (``sync_file_range``, as :func:`create_with_next_commit`), so
    ext4 allocates its block in the journal transaction running then; the rename
    joins that transaction, and the directory's sync commits both: one commit of
    the file system's journal instead of two. A commit of ext4's journal makes
    the device flush every write completed before it, the temporary file's
    included, so the new name is never on the card without its content. For a
    file rewritten often (the audit trail's head); where the write-out cannot be
    done, the temporary file is synced on its own, as without it.

    ``sync_dir=False`` (implies ``one_commit``): not even the directory is synced.
    The new name reaches the card with ext4's next commit, whichever sync (or
    ext4's timer) makes it; a crash before then leaves the old content. For a
    file written just before something that syncs anyway (the box's stop: the
    line check, then the clean-stop mark): one commit for them all.
    """
    path, mode, directory, tmp, fd = _temp_beside(path, mode)
    try:
        try:
            set_mode(fd, mode)  # the umask may have narrowed or widened it
            _write_all(fd, data)
            if not ((one_commit or not sync_dir) and _write_out([fd])):
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if sync_dir:
        fsync_dir(directory)


def set_mode(fd, mode):
    """Give the file this process has just made, open as ``fd``, the permission bits
    ``mode`` whatever the umask. A file system with no Unix permissions (a FAT stick
    mounted without ``quiet``) refuses with EPERM a mode it cannot hold, although this
    process made the file: the file then keeps the mode the mount gives every file, and is
    written all the same. What goes to such a stick (an export, a subject access bundle,
    the audit trail's copy, the key store's backup, sealed by its passphrases) leaves the
    box anyway, where no mode protects it."""
    try:
        os.fchmod(fd, mode)
    except PermissionError:
        pass


def _temp_beside(path, mode):
    """``(path, mode, directory, tmp, fd)``: a new temporary file ``tmp`` beside ``path``,
    opened for writing as ``fd`` with permission bits ``mode`` (default :func:`data_mode`)."""
    path = os.fspath(path)
    if mode is None:
        mode = data_mode()
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, ".%s.%s%s" % (name, secrets.token_hex(6), TEMP_SUFFIX))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    return path, mode, directory, tmp, fd


def write_new(path, data, mode=None):
    """Create the file ``path`` holding ``data`` (bytes), durably, never replacing a file
    there: written and synced under a temporary name, then linked in place (``link(2)``
    fails on a name that exists, even one made a moment before), so ``path`` is never seen
    part written. Where the file system has no hard links (a FAT stick), renamed in place
    by a rename that fails as ``link(2)`` does (:func:`_rename_new`); only where there is
    no such rename either, created with ``O_EXCL`` and written in place. Permission bits
    ``mode`` (default :func:`data_mode`).

    :raises FileExistsError: ``path`` exists (it is left as it is)
    :raises OSError: any other failure (nothing of this call's is left)
    """
    path, mode, directory, tmp, fd = _temp_beside(path, mode)
    try:
        _fill(fd, data, mode)
        _link_new(tmp, path, mode)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    fsync_dir(directory)


# link(2) refused because the file system has no hard links (a FAT stick)
_NO_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS)


def _link_new(tmp, path, mode):
    """Give the written and synced file ``tmp`` the name ``path`` too, never replacing a file
    there (``link(2)`` fails with EEXIST on a name that exists, even one made a moment
    before). Where the file system has no hard links, ``tmp`` is renamed to ``path`` as
    long as no file is there (:func:`_rename_new`: ``tmp`` is gone then); only where that
    rename is missing too, ``path`` is created with ``O_EXCL`` and ``tmp`` copied into it
    (seen part written until then, and left so by a cut; removed again on a failure)."""
    try:
        os.link(tmp, path, follow_symlinks=False)
    except OSError as exc:  # FileExistsError (EEXIST) too: raised as it is
        if exc.errno not in _NO_LINKS:
            raise
        if not _rename_new(tmp, path):
            _copy_excl(tmp, path, mode)


# renameat2(2)'s arguments (Linux 3.15, glibc 2.28); the os module does not offer the call.
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_renameat2 = None  # libc's, once looked up; False where there is none


def _libc_renameat2():
    global _renameat2
    if _renameat2 is None:
        _renameat2 = _libc_function(
            ("renameat2",), [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        )
    return _renameat2


def _rename_new(tmp, path):
    """Rename ``tmp`` to ``path`` unless a file is there (``renameat2`` with
    ``RENAME_NOREPLACE``, which vfat and exfat take: one step, so a cut leaves ``path``
    whole or not there, where a copy leaves it part written). False where the system or
    the file system has no such rename (nothing was done).

    :raises FileExistsError: ``path`` exists (left as it is, and ``tmp`` too)
    :raises OSError: another failure of the rename"""
    fn = _libc_renameat2()
    if not fn:
        return False
    if fn(_AT_FDCWD, os.fsencode(tmp), _AT_FDCWD, os.fsencode(path), _RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), path)


def _copy_excl(tmp, path, mode):
    """Create ``path`` with ``O_EXCL`` and copy ``tmp`` into it, synced; on any failure (a
    Ctrl-C too) the part copied is removed again. Only a cut part way leaves it: no step
    of this file system puts a whole file at a name without replacing one.

    :raises OSError: the copy failed; when what it made could not be removed either (a card
        gone read-only part way), the error says so, and names ``path``"""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            set_mode(fd, mode)
            with open(tmp, "rb") as src:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    _write_all(fd, chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException as exc:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as left:
            # Its own error hid the copy's, and the part left at ``path`` went unsaid.
            said = "part of %s is left there, not removed (%s)" % (path, left.strerror or left)
            if isinstance(exc, OSError):
                raise OSError(exc.errno, "%s; %s" % (exc.strerror or exc, said), path) from exc
            exc.add_note(said)
        raise


def commit_new(tmp, path, mode=0o600):
    """Put the written and synced file ``tmp`` at ``path``, never replacing a file there, and
    sync their directory: the last step of a new file written as a stream (one
    :func:`write_new` cannot hold in memory). A file made at ``path`` while ``tmp`` was
    written is never replaced. ``mode``: the file's permission bits, where it has to be
    copied (:func:`_link_new`).

    :raises FileExistsError: ``path`` exists (it is left as it is, and ``tmp`` too)
    :raises OSError: any other failure: ``path`` is untouched, unless it was put in place and
        the directory's sync failed (``tmp`` is then gone, and ``path`` holds it)
    """
    _link_new(tmp, path, mode)
    with contextlib.suppress(FileNotFoundError):  # renamed there (no hard links)
        os.unlink(tmp)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def _fill(fd, data, mode):
    """Give the new file ``fd`` its ``mode``, write ``data`` and sync it; ``fd`` is closed."""
    try:
        set_mode(fd, mode)
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def overwrite_in_place(path, data, file_bytes=None):
    """Write ``data`` over the start of the existing file ``path``, in place, and sync it;
    False (nothing written) when there is no such file or its size is not ``file_bytes``
    (default ``len(data)``: the whole file).

    Its blocks and size stay as they are, so the sync sends the card those blocks
    and commits nothing of the file system's journal. Data of whole 512-byte
    sectors is written with ``O_DIRECT | O_DSYNC`` where the file system takes
    it: the card then gets those sectors only, not the 4 KiB page holding them
    (the audit head: 512 bytes). A direct write that ends the file inside a
    block has ext4 write the rest of that block with zeros too, so a file
    rewritten this way should be longer than the write (the audit head's
    file is a 4 KiB block). Not atomic: a power cut may tear the write (the
    caller keeps a copy, as the audit head does).

    :raises OSError: the write or sync failed
    """
    try:
        fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        if os.fstat(fd).st_size != (len(data) if file_bytes is None else file_bytes):
            return False
        if not _overwrite_direct(path, data):
            _write_all(fd, data)
            os.fdatasync(fd)
        return True
    finally:
        os.close(fd)


_SECTOR = 512


def _overwrite_direct(path, data):
    """Write ``data`` (whole sectors) from the start of the file ``path`` with
    ``O_DIRECT | O_DSYNC``, durable when this returns; False (nothing written) where
    that cannot be done: not whole sectors, or a file system that refuses it."""
    if len(data) % _SECTOR or not hasattr(os, "O_DIRECT"):
        return False
    try:
        fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CLOEXEC | os.O_DIRECT | os.O_DSYNC)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return False
        raise
    buf = mmap.mmap(-1, -(-len(data) // mmap.PAGESIZE) * mmap.PAGESIZE)  # aligned, as O_DIRECT needs
    view = memoryview(buf)
    try:
        buf[: len(data)] = data
        done = 0
        while done < len(data):
            try:
                done += os.pwrite(fd, view[done : len(data)], done)
            except OSError as exc:
                if exc.errno == errno.EINVAL and not done:  # its sectors are larger
                    return False
                raise
        return True
    finally:
        view.release()
        buf.close()
        os.close(fd)


def append_durable(fd, data):
    """Append all of ``data`` to the open file ``fd`` and wait until it is on disk.

    ``fd`` should be opened with ``O_APPEND``. ``fdatasync`` also flushes the
    new file size, which is all a reader needs. Raises :class:`OSError`
    (``ENOSPC`` when the card is full: part of ``data`` may then have been
    written, which an append-only reader must treat as a torn tail).
    """
    _write_all(fd, data)
    os.fdatasync(fd)


def remove_durable(path):
    """Delete the file at ``path`` and make the deletion survive a power cut.

    Missing files are not an error. Note that on flash the old blocks may
    still hold the data: to make content unrecoverable, destroy its key.
    """
    path = os.fspath(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def shred(path):
    """Overwrite the file at ``path`` with zeros, sync it, then :func:`remove_durable` it:
    for a file that held a key, so its bytes are not left in blocks the file system
    freed. Missing files are not an error. A crash in between leaves a file of zeros
    (the caller removes it at its next start). Flash may still keep an old copy the
    card remapped: what matters is that the box never writes the key in clear again.
    """
    try:
        fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.pwrite(fd, bytes(os.fstat(fd).st_size), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    remove_durable(path)


def make_private_dir(path):
    """Create directory ``path`` with :func:`data_mode` (0700), and missing parents, durably.

    An existing directory is left as it is. Raises :class:`OSError`.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    make_private_dir(parent)
    try:
        os.mkdir(path, data_mode(directory=True))
        os.chmod(path, data_mode(directory=True))  # mkdir's mode is narrowed by the umask only
    except FileExistsError:  # created meanwhile by someone else
        if not os.path.isdir(path):
            raise
    fsync_dir(parent)


def remove_stale_temps(directory):
    """Delete temporary files a crashed :func:`atomic_write` left in ``directory``.

    Only call this when no other writer is active in ``directory``. Returns
    the names removed.
    """
    removed = []
    for name in os.listdir(directory):
        if name.startswith(".") and name.endswith(TEMP_SUFFIX):
            os.unlink(os.path.join(directory, name))
            removed.append(name)
    if removed:
        fsync_dir(directory)
    return removed
