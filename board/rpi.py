"""The Raspberry Pi board: gpiozero (lgpio) pins, ALSA audio, I2C codec set-up.

Nothing here runs at import time. :meth:`RpiBoard.start` opens the hardware
the HAT file describes and raises :class:`~telephony.errors.HardwareError` if
any of it is missing — there is no quiet fall-back to the simulator.
"""

from telephony.errors import HardwareError

from .alsa import AlsaCapture, AlsaPlayback
from .base import pcm16
from .gpio import GpioLines, HatBoard


def lgpio_factory():
    """gpiozero's lgpio pin factory (Pi OS Bookworm), or a HardwareError."""
    try:
        from gpiozero.pins.lgpio import LGPIOFactory

        return LGPIOFactory()
    except Exception as exc:
        raise HardwareError(
            "cannot open the Pi's GPIO through lgpio (%s). On a Raspberry Pi run `make setup`; "
            "elsewhere use the simulated board (LINEKEEPER_BOARD=sim)" % exc
        ) from exc


def init_i2c(i2c, bus_factory=None):
    """Write each I2C device's init sequence (register, value) from the HAT file."""
    if bus_factory is None:
        from smbus2 import SMBus as bus_factory
    try:
        with bus_factory(i2c.bus) as bus:
            for device in i2c.devices:
                for reg, value in device.init:
                    bus.write_byte_data(device.address, reg, value)
    except OSError as exc:
        raise HardwareError("I2C set-up of the HAT failed on bus %d: %s" % (i2c.bus, exc)) from exc


class RpiBoard(HatBoard):
    """A Raspberry Pi with the line HAT described by ``hat``."""

    def __init__(self, hat, clock, pin_factory=None, bus_factory=None):
        super().__init__(hat)
        self.clock = clock
        self.lines = len(hat.lines)
        self._pin_factory = pin_factory
        self._bus_factory = bus_factory
        self._playback_channel = {spec.line: spec.playback_channel for spec in hat.lines}
        self._capture = None
        self._playback = None
        self._factory = None
        self._mcu_bus = None
        self._power_fail_pin = None

    def start(self, on_edge, on_audio):
        try:
            if self.hat.i2c is not None and self.hat.i2c.devices:
                init_i2c(self.hat.i2c, self._bus_factory)
            factory = self._factory = self._pin_factory or lgpio_factory()
            self.gpio = GpioLines(self.hat, factory, self.clock)
            self.gpio.start(on_edge)
            audio = self.hat.audio
            self._capture = AlsaCapture(
                audio.capture, audio.rate, audio.channels, audio.period_frames, self.clock
            )
            self._capture.open()
            self._playback = AlsaPlayback(audio.playback, audio.rate, audio.channels, audio.period_frames)
            self._playback.open()
            self._capture.start(on_audio)
        except Exception:
            self.stop()
            raise

    def stop(self):
        for part in (self._capture, self._playback, self.gpio):
            if part is not None:
                part.stop()
        self._capture = self._playback = self.gpio = None
        if self._power_fail_pin is not None:
            self._power_fail_pin.when_changed = None
            self._power_fail_pin.close()
            self._power_fail_pin = None
        if self._mcu_bus is not None:
            self._mcu_bus.close()
            self._mcu_bus = None

    def mcu_bus(self):
        """The I2C bus of the HAT's supervisor MCU (an ``smbus2.SMBus``), or None without one."""
        if self.hat.mcu is None:
            return None
        if self._mcu_bus is None:
            bus_factory = self._bus_factory
            if bus_factory is None:
                from smbus2 import SMBus as bus_factory
            try:
                self._mcu_bus = bus_factory(self.hat.i2c.bus)
            except OSError as exc:
                raise HardwareError(
                    "cannot open I2C bus %d for the supervisor MCU: %s" % (self.hat.i2c.bus, exc)
                ) from exc
        return self._mcu_bus

    def watch_power_fail(self, on_change):
        """Call ``on_change(active, t_us)`` when the MCU's power-fail GPIO line changes
        (after :meth:`start`); False when the HAT has no such line."""
        mcu = self.hat.mcu
        if mcu is None or mcu.power_fail is None or self._factory is None:
            return False
        spec = mcu.power_fail
        pin = self._factory.pin(spec.gpio)
        pin.function = "input"
        pin.pull = spec.pull
        pin.bounce = None
        pin.edges = "both"

        def changed(ticks, state):
            on_change(bool(state) != spec.active_low, self.clock.now_us())

        self._power_fail_callback = changed  # gpiozero keeps only a weak reference
        pin.when_changed = changed
        self._power_fail_pin = pin
        return True

    def play(self, line, samples):
        self._playback.queue(self._playback_channel[line], pcm16(samples).tobytes())

    def stop_playing(self, line):
        if self._playback is not None:
            self._playback.drop(self._playback_channel[line])
