"""A power cut while the box starts after a power cut: the supply flickers.

When the mains comes back after a cut it often fails again within seconds,
and the box has just started: it is replaying its recording journal into the
files, finishing the recordings the cut left open, emptying the journal. This
test takes images of the data directory as the first cut left it
(test_crash_unsynced.py's model, :class:`~support.powercut.PowerCut`, at cuts
with a recording file in flight), starts the box on each, and cuts again at
every system call of the start that the recording modules make and after
every sync of a database (:class:`~support.powercut.AfterImage`: a file
rewritten and not yet synced keeps, of each sector, its old content, the new
one or garbage). The box then starts on the second image.

What was promised after the first cut must still hold after the second
(:meth:`Lab.check_after_crash`, with the first cut's instant): every
recording ``complete`` or ``partial``, ``verify`` passes, and each exports the
line's audio up to within the loss bound of the first cut. A second cut during
the recovery loses nothing more.

And the card may fail as the box starts: one write or sync of the start refused
with an I/O error, of the recording modules and fsutil or of SQLite's
(:mod:`support.sqlitefaults`), at each in turn. The start goes on or stops with
a one-line storage error; the next start keeps the first cut's promises.
"""

import contextlib
import errno
import os
import random
import shutil

import pytest

from firmware.errors import StorageError
from firmware.recording import journal, segment, store
from firmware.storage import fsutil

from .test_crash_unsynced import CALLS, PATHS, SEED, check_cut  # the power-cut test's
from .test_io_faults import _Faulty
from support.powercut import AfterImage, PowerCut
from support.sqlitefaults import SqliteFaults

pytestmark = pytest.mark.slow  # a run of the box, then a start for each first cut

FIRST_CUTS = 4  # a path, each with a recording file in flight (LK_CRASH_SEED draws others)


def _first_cuts(lab, scenario, name):
    """``([(image, clock time)], the recorder's chunk in µs)``: :data:`FIRST_CUTS` cuts of
    the run, drawn among those with a recording file in flight."""
    in_flight, images, state = [], [], {"points": ()}

    def on_call(_name):
        in_flight.append(cut.in_flight)
        if len(in_flight) in state["points"]:
            image = str(lab.tmp_path / ("first-%s-%03d" % (name, len(in_flight))))
            cut.image(image, random.Random(SEED + len(in_flight)))
            images.append((image, state["box"].clock.now_us()))

    # A dry run finds the cuts with a file in flight; the run is deterministic.
    cut = PowerCut(lab.init_data_dir(lab.tmp_path / ("dry-" + name)), on_call)
    with cut.observing():
        lab.run(scenario, cut.data_dir, before_start=lambda box: state.update(box=box))
    candidates = [k for k, flying in enumerate(in_flight, 1) if flying]
    state["points"] = set(random.Random(SEED).sample(candidates, FIRST_CUTS))
    in_flight.clear()
    cut = PowerCut(lab.init_data_dir(lab.tmp_path / ("live-" + name)), on_call)
    with cut.observing():
        lab.run(scenario, cut.data_dir, before_start=lambda box: state.update(box=box))
    assert len(images) == FIRST_CUTS, "the run is not deterministic"
    return images, state["box"].recorder.chunk_ms * 1000


def _cuts_while_starting(lab, restart, image):
    """Start the box on ``image``; ``([(second image, the call it was cut at)], what
    the recovery did)``: one image at each cut of the start."""
    start = str(image) + "-start"
    os.rename(image, start)
    seconds = []

    def on_call(name):
        second = "%s-cut-%03d" % (start, len(seconds) + 1)
        model.image(second, random.Random(SEED + len(seconds)))
        seconds.append((second, name))

    model = AfterImage(start, on_call)
    with model.observing():
        run = lab.run(restart, start, until_us=1_000_000)
    return seconds, run.recovered


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_cut_while_the_box_recovers_from_a_cut_loses_nothing_more(lab, path):
    p = PATHS[path]
    scenario = lab.load(lab.scenario_doc(CALLS, lines=3, **p["extra"]))
    restart = lab.load(lab.scenario_doc([], lines=3, **p["extra"]))
    firsts, chunk_us = _first_cuts(lab, scenario, path)
    kinds = {}
    for first, t_us in firsts:
        seconds, recovered = _cuts_while_starting(lab, restart, first)
        # The first cut left the start something to do.
        assert any(kind == "partial" for kind, _id, _what in recovered), (first, recovered)
        for k, (second, call) in enumerate(seconds, 1):
            kinds[call] = kinds.get(call, 0) + 1
            what = "cut %d of %d (%s) while starting after %s" % (k, len(seconds), call, first)
            check_cut(lab, second, scenario, t_us, what, p, chunk_us)
            shutil.rmtree(second)  # checked (a failing one stays for a look): GBs a run otherwise
    print(
        "second cuts checked: %d (%s)"
        % (sum(kinds.values()), ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items())))
    )


@pytest.mark.parametrize("kind", ["system call", "database"])
@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_card_error_while_the_box_recovers_costs_nothing_after_the_next_start(lab, monkeypatch, path, kind):
    """The card refuses one write or sync of the start (an I/O error), at each in turn:
    of the recording modules and fsutil, or of SQLite's.

    That start may go on (the error logged) or stop with the error (the
    service starts it again); either way the next start, on a card that
    answers again, keeps the first cut's promises.

    The starts after two first cuts take turns: the first's odd calls fail, the
    second's even ones. Their starts make nearly the same calls (a few recordings
    to finish each), so every call of a start still fails once. Failing each twice,
    once after each cut, made this the suite's slowest test: about 380 starts with a
    fault for the database's calls, over three minutes each time it ran.
    """
    p = PATHS[path]
    scenario = lab.load(lab.scenario_doc(CALLS, lines=3, **p["extra"]))
    restart = lab.load(lab.scenario_doc([], lines=3, **p["extra"]))
    firsts, chunk_us = _first_cuts(lab, scenario, path)
    outcomes = {}
    for turn, (first, t_us) in enumerate(firsts[:2]):
        tag = kind.split()[0]
        count = _start_with_fault(lab, monkeypatch, restart, first, "%s-%s-dry" % (first, tag), kind, None)
        for k in range(1 + turn, count + 1, 2):
            image = "%s-%s-eio-%03d" % (first, tag, k)
            outcome = _start_with_fault(lab, monkeypatch, restart, first, image, kind, k)
            what = "I/O error at %s %d of %d while starting after %s" % (kind, k, count, first)
            assert outcome in ("went on", "stopped"), (what, outcome)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            lab.run(restart, image, until_us=1_000_000)  # the next start
            check_cut(lab, image, scenario, t_us, what, p, chunk_us)
            shutil.rmtree(image)
    print("starts with a card error: %s" % outcomes)


@contextlib.contextmanager
def _faults(monkeypatch, data_dir, kind, fail_at):
    """While in it: the ``fail_at``-th of the start's ``kind`` of calls fails with an I/O
    error (``"system call"``: a write, sync, rename or allocation of the recording
    modules and fsutil; ``"database"``: a write or sync of SQLite's). Yields
    ``() -> (how many there were, whether it struck)``."""
    if kind == "database":
        with SqliteFaults(data_dir, fail_at) as faults:
            faults.armed = True
            yield lambda: (faults.count, faults.struck is not None)
        return
    state = {"count": 0, "fail_at": fail_at, "struck": None, "armed": True, "err": errno.EIO, "span": 1}
    with monkeypatch.context() as mp:
        for module in (segment, journal, store, fsutil):
            mp.setattr(module, "os", _Faulty(state))
        yield lambda: (state["count"], state["struck"] is not None)


def _start_with_fault(lab, monkeypatch, restart, image, data_dir, kind, fail_at):
    """Start the box on a copy of ``image`` at ``data_dir`` for a second, its
    ``fail_at``-th ``kind`` of call failing (:func:`_faults`): how it ended (``"went
    on"``, ``"stopped"`` with a :class:`StorageError`, or what else). In a process of
    its own, which ends there as the box's would (its lock, its open files let go).
    ``fail_at=None``: how many calls there were."""
    shutil.copytree(image, data_dir)
    with _faults(monkeypatch, data_dir, kind, fail_at) as seen:
        if fail_at is None:
            lab.run(restart, data_dir, until_us=1_000_000)
            return seen()[0]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            os.close(read)
            try:
                lab.run(restart, data_dir, until_us=1_000_000)
                outcome = "went on"
            except OSError as exc:  # StorageError among them
                outcome = "stopped" if isinstance(exc, StorageError) else repr(exc)
            except BaseException as exc:
                outcome = repr(exc)
            if not seen()[1]:
                outcome = "no call %d" % fail_at
            os.write(write, outcome.encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as f:
            outcome = f.read().decode()
        os.waitpid(pid, 0)
    return outcome
