"""Line signalling DSP, built on libspandsp.

* :mod:`.detector` — :class:`~.detector.LineDsp`, one per line: dialled DTMF
  digits, caller ID (V.23, Bell 202, DTMF), alert and call-progress tones.
* :mod:`.events` — the events it reports.
* :mod:`.generate` — the same signals as audio, for the simulator and tests.
* :mod:`.spandsp` — the cffi binding (opened on first use).
* :mod:`.dtmf`, :mod:`.fsk`, :mod:`.tones`, :mod:`.cid`, :mod:`.history` —
  the receivers and the caller-ID message parser behind ``LineDsp``.

Importing this package loads nothing; libspandsp is opened when the first
receiver or generator needs it.
"""
