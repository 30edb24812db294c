"""Linekeeper: the recorder daemon of a lawful call recording and logging box.

The package is wired together in one place, :mod:`firmware.box`; every other
module takes its collaborators (board, clock, bus, storage) as arguments and
does no work at import time.
"""

__version__ = "0.1.0"
