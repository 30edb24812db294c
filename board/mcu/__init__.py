"""The HAT's supervisor MCU: its MicroPython firmware and the Pi's side of it.

``lkmcu/`` and ``main.py`` are the firmware (MicroPython, also importable by
CPython); ``link.py`` is the Pi's driver over I2C (smbus2); ``sim.py`` runs the
firmware on the simulated board's clock behind a simulated I2C bus; ``fakes.py``
holds the stand-ins for ``machine``'s pins and ADCs that both use.
"""
