"""SIGINT and SIGTERM held off while something is done whole: an audit entry appended.

Python runs a signal's handler (Ctrl-C's raises :class:`KeyboardInterrupt`) between any two
bytecodes of the main thread. One that came as an audit entry was committed, before the
append returned, stopped a writer that then believed nothing was audited (the entry was), or
stopped the trail's head from following its last entry. Within :class:`SignalsHeld` such a
signal is only noted; it is delivered (its handler run) when the block ends, or where the
writer calls :meth:`SignalsHeld.release`: where it is ready to say what the stop left.

The handlers are swapped, not the signals blocked (``pthread_sigmask``): a mask is one
thread's, and a signal another thread of the process does not block is taken there and its
handler run on the main thread all the same; a handler is the process's, whichever thread
the signal reached.
"""

import signal
import threading

HELD = (signal.SIGINT, signal.SIGTERM)


class SignalsHeld:
    """A context manager in which SIGINT and SIGTERM are noted, not handled; each that came
    is delivered (raised again, to the handler it had before) when the block ends, or at
    :meth:`release`: the :class:`KeyboardInterrupt` of a Ctrl-C is raised there. Only the
    main thread runs signal handlers: elsewhere it does nothing. Nested, the inner block's
    signals go to the outer's. A signal ignored (``SIG_IGN``) stays ignored."""

    def __init__(self):
        self._before = None  # {signum: its handler before}, while held
        self._came = []

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        before = {}
        try:
            for signum in HELD:
                handler = signal.getsignal(signum)
                if handler is signal.SIG_IGN or handler is None:  # ignored, or not set from Python
                    continue
                before[signum] = handler
                signal.signal(signum, self._note)
        except BaseException:
            self._before = before
            self.release()
            raise
        self._before = before
        return self

    def _note(self, signum, _frame):
        if signum not in self._came:
            self._came.append(signum)

    def release(self):
        """Put the handlers back, then deliver each signal that came meanwhile, once (its
        handler may raise: :class:`KeyboardInterrupt`, or a command's own stop; the others
        are delivered all the same, and the first raised goes on). Idempotent."""
        before, self._before = self._before, None
        if before is None:
            return
        for signum, handler in before.items():
            signal.signal(signum, handler)
        came, self._came = self._came, []
        # Each delivered, even when one's handler raises (Ctrl-C's KeyboardInterrupt): a
        # SIGTERM that came with it still reaches its handler; the first raised goes on.
        raised = None
        for signum in came:
            try:
                signal.raise_signal(signum)
            except BaseException as exc:
                raised = raised or exc
        if raised is not None:
            raise raised

    def __exit__(self, *exc):
        self.release()
        return False
