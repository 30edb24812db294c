"""A power cut at any write or sync of the box, its databases' and its audit head's included.

test_crash_unsynced.py cuts the power at the recording writer's and the
journal's system calls. Between those, the box commits the call log, the
recordings' rows, the audit trail and its head, key copies and marks: a cut
can fall between any two of them too. This test observes, over the power-cut
test's calls, every write, sync, rename and removal of the recording modules
and of :mod:`firmware.storage.fsutil` (key copies, the audit head, the
marks...), and every sync of a database
(:class:`~support.powercut.AfterImage`: a recording file keeps, of what was
written since its last sync, each sector's old bytes, the new ones or
garbage; a database is as last synced), and cuts at every one of them (about
170 a path; the torn sectors drawn with a fixed seed, ``LK_CRASH_SEED``
draws others).

On each image: the promises of a cut (:meth:`Lab.check_after_crash`: every
recording ``complete`` or ``partial``, ``verify`` passes, the audio up to
the loss bound); then the box starts on it, runs a second with no call and
stops cleanly, and ``verify`` still passes: a cut whose traces only a crash
explains (an audit head a group behind) must not read as tampering once the
box has stopped cleanly since.
"""

import contextlib
import os
import random
import shutil
import sqlite3

import pytest

from .test_crash_unsynced import CALLS, PATHS, SEED, check_cut  # the power-cut test's
from support.powercut import AfterImage

pytestmark = pytest.mark.slow  # a run of the box, then a start for each cut


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_cut_at_any_write_or_sync_loses_at_most_the_bound_and_never_evidence(lab, path):
    p = PATHS[path]
    scenario = lab.load(lab.scenario_doc(CALLS, lines=3, **p["extra"]))
    restart = lab.load(lab.scenario_doc([], lines=3, **p["extra"]))
    images, state = [], {}

    def on_call(name):  # an image at each one, as a cut there would leave the card
        image = str(lab.tmp_path / ("cut-%s-%04d" % (path, len(images) + 1)))
        model.image(image, random.Random(SEED + len(images)))
        box = state.get("box")
        images.append((image, name, box.clock.now_us() if box is not None else 0))

    model = AfterImage(lab.init_data_dir(lab.tmp_path / "live"), on_call)
    with model.observing():
        lab.run(scenario, model.data_dir, before_start=lambda box: state.update(box=box))
    chunk_us = state["box"].recorder.chunk_ms * 1000
    kinds = {}
    for image, name, t_us in images:
        kinds[name] = kinds.get(name, 0) + 1
        what = "cut at %s (%s), %d ms" % (image, name, t_us // 1000)
        with contextlib.closing(sqlite3.connect(os.path.join(image, "calls.db"))) as db:
            try:
                recording = db.execute("SELECT count(*) FROM recordings").fetchone()[0]
            except sqlite3.OperationalError:  # cut before the box made its tables
                recording = 0
        if recording:  # (a cut before the first recording leaves none to check)
            check_cut(lab, image, scenario, t_us, what, p, chunk_us)
        lab.run(restart, image, until_us=1_000_000)  # starts, a second with no call, a clean stop
        status, out, err = lab.verify(image)
        assert status == 0, (what, "after a clean stop", out, err)
        shutil.rmtree(image)  # checked (a failing one stays for a look): a few GB a run otherwise
    print(
        "cuts: %d (%s); name changes left out of them: %d"
        % (len(images), ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items())), model.names_lost)
    )
