"""The bottom layer: telephony facts and signals every other package shares.

* :mod:`.countries` — one table of each country's conventions (caller-ID
  standards, FSK parameters, ring cadences and timeouts, tones, number formats).
* :mod:`.levels` — the 0 dBm0 reference and speech levels.
* :mod:`.generate` — signalling as audio (spandsp's transmitters), for the
  simulator, the consent tone and the tests.
* :mod:`.spandsp` — the cffi binding to libspandsp (opened on first use).
* :mod:`.errors` — the base of the one exception hierarchy.

Nothing here imports ``board``, ``firmware`` or ``web``; they all import this.
Importing it loads nothing.
"""
