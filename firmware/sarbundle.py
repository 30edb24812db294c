"""A subject access bundle written as a stream: memory bounded whatever the audio length.

A person's calls can hold hours of audio (WAV: 57.6 MB an hour). The bundle was
made whole in memory, held two or three times over as it was zipped and
encrypted; the web UI (384 MiB) was killed by a regular caller's release. Here
each file goes into the ZIP as it is made (:class:`ZipStream`: a ZIP needs no
seek, its sizes go in data descriptors, ZIP64 where needed), each recording
decoded a chunk at a time and written in slices (:func:`wav_parts`), and with a
bundle password the ZIP is piped through gpg (:class:`GpgStream`) on its way to
a *spool*: where the bundle waits until its release is logged. A spool has
``write(bytes)``, ``commit(entry_id)`` (the release is on record, as that
disclosure log entry: keep it, e.g. rename into place) and ``discard()``
(anything failed: leave nothing behind, once the release is audited as not made)
and ``keep()`` (a commit failed and the trail refused to say so: leave it whole,
the release stays on record; where it is); it may have ``ready()`` (the bundle is
whole: write it all out before the release is logged) and ``logged(entry_id)``
(the release is being logged: name it so, :func:`firmware.sar._log`). :class:`MemorySpool`
keeps it in memory, :class:`FileSpool` in a file beside its destination (the
command line's ``--out``); the web UI's is :class:`web.sarjob.SealedSpool`.
"""

import errno
import hashlib
import io
import os
import secrets
import struct
import subprocess
import tempfile
import threading
import zipfile

from .errors import LinekeeperError
from .storage import fsutil

SLICE_BYTES = 1 << 20  # audio goes into the ZIP a MiB at a time
_FIXED = (2000, 1, 1, 0, 0, 0)  # no timestamps in the bundle


class BundleError(LinekeeperError, ValueError):
    """The bundle could not be made (gpg missing or failed): nothing was released."""


class Counted(io.RawIOBase):
    """A write-only stream that passes bytes to ``out`` and keeps their SHA-256 and count."""

    def __init__(self, out):
        self._out = out
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def writable(self):
        return True

    def write(self, data):
        self._out.write(data)
        self.sha256.update(data)
        self.bytes += len(data)
        return len(data)


class ZipStream:
    """A ZIP written to ``out`` (any binary stream, seekable or not) file by file.

    Each file's size and SHA-256 are kept (:attr:`listing`) for the manifest.
    """

    def __init__(self, out):
        self._zip = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)
        self.listing = {}

    def add(self, name, data):
        self.add_parts(name, [data], len(data))

    def add_parts(self, name, parts, size):
        """``parts`` (an iterable of bytes, ``size`` bytes in all) as the file ``name``."""
        info = zipfile.ZipInfo(name, date_time=_FIXED)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.file_size = size  # ZIP64 from the start when it needs it (no seeking back)
        digest, n = hashlib.sha256(), 0
        with self._zip.open(info, "w") as f:
            for part in parts:
                f.write(part)
                digest.update(part)
                n += len(part)
        self.listing[name] = {"name": name, "bytes": n, "sha256": digest.hexdigest()}

    def close(self):
        self._zip.close()

    def abandon(self):
        """Something failed: write no more (no central directory to a spool being discarded,
        which ``ZipFile`` would otherwise write when it is collected)."""
        self._zip.fp = None


def wav_header(n_samples, rate):
    """The 44-byte header of a mono 16-bit PCM WAV of ``n_samples`` at ``rate`` Hz."""
    data = 2 * n_samples
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        rate,
        2 * rate,
        2,
        16,
        b"data",
        data,
    )


def wav_parts(pieces, n_samples, rate, spans=()):
    """``(parts, size)``: the WAV of ``n_samples`` samples at ``rate`` Hz, given as ``pieces``
    (int16 arrays, in order: :meth:`~firmware.recording.store.RecordingStore.export_stream`),
    in slices of :data:`SLICE_BYTES`, ``spans`` (``[(from_s, to_s)]``) made digital silence.
    Only a piece and a slice are held, never the samples or the WAV whole.

    :raises BundleError: (from the parts) the pieces held other than ``n_samples``
    """
    cuts = [(int(from_s * rate), int(to_s * rate)) for from_s, to_s in spans]
    step = SLICE_BYTES // 2

    def parts():
        yield wav_header(n_samples, rate)
        held, at = bytearray(), 0  # bytes not yet sliced; samples given so far
        for whole in pieces:
            for i in range(0, len(whole), step):  # a long piece is not copied whole
                piece = whole[i : i + step].astype("<i2", copy=False)
                silenced = [(max(a - at, 0), min(b - at, len(piece))) for a, b in cuts]
                silenced = [(a, b) for a, b in silenced if a < b]
                if silenced:
                    piece = piece.copy()
                    for a, b in silenced:
                        piece[a:b] = 0
                at += len(piece)
                held += piece.tobytes()
                if len(held) >= SLICE_BYTES:
                    part = held[:SLICE_BYTES]
                    del held[:SLICE_BYTES]
                    yield part
        if at != n_samples:
            raise BundleError("the recording gave %d samples, not the %d its WAV says" % (at, n_samples))
        if held:
            yield bytes(held)

    return parts(), 44 + 2 * n_samples


class GpgStream(io.RawIOBase):
    """A write-only stream whose bytes are encrypted with OpenPGP (AES-256, gpg's symmetric
    mode) for ``password`` on their way to ``out``. :meth:`finish` waits for gpg.

    The password reaches gpg on a pipe of its own, never on its command line; gpg's home
    is an empty directory of its own (it keeps nothing of the bundle there).

    :raises BundleError: gpg is missing or failed
    """

    def __init__(self, password, out):
        self._out = out
        self._home = tempfile.TemporaryDirectory()
        r, w = os.pipe()
        try:
            os.write(w, password.encode("utf-8") + b"\n")
            os.close(w)
            w = None
            self._proc = subprocess.Popen(
                [
                    "gpg",
                    "--homedir",
                    self._home.name,
                    "--batch",
                    "--yes",
                    "--quiet",
                    "--symmetric",
                    "--cipher-algo",
                    "AES256",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase-fd",
                    str(r),
                    "--output",
                    "-",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(r,),
            )
        except FileNotFoundError:
            self._home.cleanup()
            raise BundleError("gpg is not installed (scripts/install-deps): cannot encrypt") from None
        finally:
            os.close(r)
            if w is not None:
                os.close(w)
        self._failed = None
        self._err = b""
        self._reader = threading.Thread(target=self._copy_out, name="gpg-out", daemon=True)
        self._errors = threading.Thread(target=self._read_err, name="gpg-err", daemon=True)
        self._reader.start()
        self._errors.start()

    def _copy_out(self):
        try:
            while True:
                block = self._proc.stdout.read(SLICE_BYTES)
                if not block:
                    return
                self._out.write(block)
        except BaseException as exc:  # the spool refused (disk full): stop gpg, say why
            self._failed = exc
            self._proc.kill()
            # gpg's output is drained so it is not left blocked on a full pipe
            while self._proc.stdout.read(SLICE_BYTES):
                pass

    def _read_err(self):
        self._err = self._proc.stderr.read()

    def writable(self):
        return True

    def write(self, data):
        try:
            self._proc.stdin.write(data)
        except BrokenPipeError:
            self.abort()
            self._raise()
            raise BundleError("gpg stopped before the bundle was encrypted") from None
        return len(data)

    def _raise(self):
        if self._failed is not None:
            raise self._failed

    def finish(self):
        """Wait for gpg to write the last of it.

        :raises BundleError: gpg failed (or whatever the spool raised)
        """
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        self._reader.join()
        self._errors.join()
        rc = self._proc.wait()
        self._home.cleanup()
        self._raise()
        if rc != 0:
            raise BundleError("gpg failed: %s" % self._err.decode("utf-8", "replace").strip())

    def abort(self):
        """Stop gpg (something failed): nothing more is written."""
        self._proc.kill()
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        self._reader.join()
        self._errors.join()
        self._proc.wait()
        self._home.cleanup()


class MemorySpool:
    """The bundle kept in memory (:attr:`data` once committed): small bundles and tests."""

    def __init__(self):
        self._buf = io.BytesIO()
        self.data = None

    def write(self, data):
        self._buf.write(data)
        return len(data)

    def commit(self, entry_id=None):
        self.data = self._buf.getvalue()

    def keep(self):
        """Keep it (its release stays on record as made: :func:`firmware.sar.release`)."""
        self.commit()
        return "MemorySpool.data"

    def discard(self):
        self._buf = io.BytesIO()


def _same_file(path, tmp):
    """Whether ``path`` is the file ``tmp`` (linked there), or ``tmp`` is gone and ``path``
    is there (put there whole)."""
    try:
        placed = os.stat(path)
    except FileNotFoundError:
        return False
    try:
        return os.path.samestat(placed, os.stat(tmp))
    except FileNotFoundError:
        return True


class FileSpool:
    """The bundle written beside ``path`` (a hidden temporary file, mode ``mode``), put at
    ``path`` (durably, never over a file there: one made there meanwhile is kept) when
    committed; removed when discarded, so a failure leaves no half-written bundle (nor one
    put in place by a commit that then failed).
    :attr:`written`: the bytes written so far; :attr:`whole`: it is all out (:meth:`ready`),
    its release may be being logged.

    :raises OSError: the file cannot be made
    """

    def __init__(self, path, mode=0o600):
        self.path = os.fspath(path)
        directory, name = os.path.split(os.path.abspath(self.path))
        self._tmp = os.path.join(directory, ".%s.%s%s" % (name, secrets.token_hex(6), fsutil.TEMP_SUFFIX))
        self._mode = mode
        self._placed = False  # put at ``path`` by a commit that then failed (its folder's sync)
        self.written = 0
        self.whole = False
        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        fsutil.set_mode(fd, mode)
        self._file = os.fdopen(fd, "wb")

    def write(self, data):
        n = self._file.write(data)
        self.written += n
        return n

    def ready(self):
        """Write it all out and sync it, before the release is logged: a full card or stick
        refuses it now, with nothing logged. :raises OSError:"""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        self.whole = True

    def commit(self, entry_id=None):
        """Sync and put in place (:func:`firmware.storage.fsutil.commit_new`).

        :raises FileExistsError: a file was made at ``path`` meanwhile (it is kept; the
            error's ``filename``)
        :raises OSError: the bundle is left where it is (beside ``path``, or at it when it
            was put there and the folder's sync failed) for :meth:`discard` or :meth:`keep`:
            the caller deletes it once its release is audited as not made
        """
        try:
            self.ready()
            try:
                fsutil.commit_new(self._tmp, self.path, self._mode)
            except FileExistsError:  # (link(2)'s names the temporary file)
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), self.path) from None
        except BaseException:
            self._placed = _same_file(self.path, self._tmp)
            raise

    def keep(self):
        """Leave the bundle where it is (its release stays on record as made); the file it is."""
        try:
            self._file.close()
        except OSError:
            pass
        return self.path if self._placed else self._tmp

    def discard(self):
        try:
            self._file.close()
        except OSError:
            pass
        for path in (self._tmp, self.path) if self._placed else (self._tmp,):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
