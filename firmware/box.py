"""The box: where the parts are chosen and wired together — the one place.

    board ──edges──▶ supervisor ──bus──▶ call log, line status, (recorder)
      └──audio──▶ capture ─▶ per-line ring ─▶ DSP ──events──▶ supervisor

:func:`open_box` picks the board (simulated or Raspberry Pi), the clock and
the storage from the configuration; :class:`Box` only connects what it is
given, so tests can build one around any board.
"""

import logging
import os

from board import choose_board

from .alarms import AlarmBoard
from .audit import AuditLog
from .bus import EventBus
from .calllog import CallLog
from .capture import Capture
from .clock import RealClock, SimClock
from .config import load_config
from .keystore import KeyStore
from .recorder import Recorder
from .policy.sweeper import RetentionSweeper
from .recordings import RecordingStore
from .status import LineStatus
from .supervisor import Supervisor, SupervisorConfig

log = logging.getLogger(__name__)


class Box:
    """A running recorder around ``board``.

    :param board: a :class:`board.base.Board`
    :param clock: the clock the board stamps edges and audio with
    :param data_dir: where the call log lives (created if missing)
    :param config: a :class:`firmware.config.BoxConfig`
    :param signals: the input signals the board's HAT wires
    :param dsp_factory: ``f(line, on_event) -> LineDsp`` or None for no DSP
    :param strict: raise errors from event handlers (simulator, tests)
    """

    def __init__(self, board, clock, data_dir, config, signals, *, dsp_factory=None,
                 strict=False, threaded=False):
        os.makedirs(data_dir, exist_ok=True)
        self.board = board
        self.clock = clock
        self.config = config
        self.data_dir = data_dir
        self.bus = EventBus(strict=strict)
        self.calllog = CallLog(os.path.join(data_dir, "calls.db"), clock)
        self.calllog.attach(self.bus)
        self.audit = open_audit(data_dir)
        self.keystore = KeyStore(data_dir)
        self.recordings = RecordingStore(data_dir)
        # Finish recordings a crash (or power cut) left open, before anything new.
        self.recovered = self.recordings.recover()
        self.status = LineStatus(board.lines, clock)
        self.status.attach(self.bus)
        self.dsp = {}
        self.supervisor = Supervisor(
            board.lines, clock, self.bus,
            SupervisorConfig(country=config.country, debounce_ms=config.debounce_ms,
                             stuck_off_hook_ms=config.stuck_off_hook_min * 60_000,
                             no_voltage_fault_ms=config.no_voltage_fault_s * 1000),
            signals=signals, on_hook_change=self._hook_changed)
        self.capture = Capture(board, threaded=threaded)
        self.recorder = Recorder(self.capture, self.recordings, clock, self.bus,
                                 self._public_key,
                                 preroll_ms=config.preroll_ms, flush_ms=config.flush_ms,
                                 profile=config.audio_profile,
                                 disk_reserve_bytes=config.disk_reserve_mb << 20)
        self.recorder.attach(self.bus)
        self.alarms = AlarmBoard()
        self.alarms.attach(self.bus)
        self.retention = RetentionSweeper(self.recordings, clock, self.audit,
                                          config.policy.retention, bus=self.bus,
                                          threaded=threaded)
        if dsp_factory is not None:
            for line in range(1, board.lines + 1):
                dsp = dsp_factory(line, self._dsp_event(line))
                self.dsp[line] = dsp
                self.capture.add_consumer(line, dsp.feed)
        self._started = False

    def apply_config(self, config):
        """Use ``config``, just saved to ``config.json`` (by the web pages), at once.

        Retention applies from the next sweep; the other parts read theirs
        when the box starts.
        """
        self.config = config
        self.retention.update_settings(config.policy.retention)

    def _public_key(self):
        """The recording public key once the box is initialised, else None."""
        return self.keystore.public_key() if self.keystore.is_initialised else None

    def _dsp_event(self, line):
        def on_event(ev):
            self.supervisor.on_dsp_event(line, ev)
        return on_event

    def _hook_changed(self, line, off_hook):
        dsp = self.dsp.get(line)
        if dsp is not None:
            dsp.set_off_hook(off_hook)

    def start(self):
        if self._started:
            raise RuntimeError("the box is already running")
        self.capture.start()
        self.board.start(self.supervisor.on_edge, self.capture.on_audio)
        # A line that is already off-hook or dead at start-up sends no edge.
        self.supervisor.sync(self.board.read)
        self.retention.start()
        self._started = True

    def stop(self):
        if not self._started:
            return
        self._started = False
        self.board.stop()
        self.capture.stop()
        self.supervisor.close()
        self.recorder.close()
        self.retention.close()
        self.recordings.close()
        self.audit.close()
        self.calllog.close()


def open_audit(data_dir):
    """The box's audit trail (its chain head kept in a file of its own)."""
    return AuditLog(os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"))


def make_dsp_factory(country):
    """Per-line spandsp detectors for ``country`` (see :mod:`firmware.dsp`)."""
    from .dsp.detector import LineDsp

    def factory(line, on_event):
        return LineDsp(country=country, on_event=on_event)
    return factory


def open_sim_box(scenario, data_dir, *, speed=None, config=None, synth=None, period_ms=None):
    """A box on the simulated board playing ``scenario`` (a loaded Scenario).

    The scenario's country wins over the configured one: the simulated
    exchange is what the box is plugged into.
    """
    from board.hat import load_hat
    from board.sim.board import SimBoard
    from board.sim.speech import SpeechSynth
    from board.sim.timeline import compile_timeline

    config = config or load_config(data_dir)
    if config.country != scenario.country:
        config = config.replace(country=scenario.country)
    hat = load_hat(scenario.hat)
    if synth is None:
        # The simulator's speech is test material, not the box's data: it is
        # cached apart, so the data directory holds only what the box wrote.
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        synth = SpeechSynth(cache_dir=os.path.join(cache, "linekeeper", "speech"))
    timeline = compile_timeline(scenario, synth)
    clock = SimClock(start_wall_us=scenario.start_wall_us, speed=speed)
    if period_ms is None:
        period_ms = 20 if speed is not None else 100
    board = SimBoard(timeline, hat, clock, period_ms=period_ms,
                     noise_dbm0=scenario.noise_dbm0, seed=scenario.seed)
    return Box(board, clock, data_dir, config, board.gpio.signals(),
               dsp_factory=make_dsp_factory(config.country), strict=True)


def open_rpi_box(data_dir, config):
    """A box on the Raspberry Pi with the configured HAT."""
    from board.hat import load_hat
    from board.gpio import hat_signals
    from board.rpi import RpiBoard

    if not config.hat:
        from .errors import ConfigError
        raise ConfigError("the Raspberry Pi board needs a HAT: set \"hat\" in config.json",
                          field="hat")
    hat = load_hat(config.hat)
    clock = RealClock()
    board = RpiBoard(hat, clock)
    return Box(board, clock, data_dir, config, hat_signals(hat),
               dsp_factory=make_dsp_factory(config.country), threaded=True)


def board_for(data_dir, requested=None):
    """``(board name, config)``: the request, else ``LINEKEEPER_BOARD``, else config."""
    config = load_config(data_dir)
    return choose_board(requested, config.board_name), config
