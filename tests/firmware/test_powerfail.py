"""The box's power-fail watch against the MCU's own firmware (simulated): the warning
by status poll or GPIO edge, the hold-up time it reports, and the power coming back."""

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware.clock import SimClock
from firmware.powerfail import BUSY_POLL_MS, IDLE_POLL_MS, PowerFailWatch


class NoGpioBoard:
    """A board whose HAT has no power-fail GPIO line (the LK-4L)."""


class GpioBoard:
    def __init__(self):
        self.on_change = None

    def watch_power_fail(self, on_change):
        self.on_change = on_change
        return True


def rig(board, busy=True):
    clock = SimClock()
    events = []
    mcu = SimMcu(clock, farads=2.5, load_mw=4000, min_mv=2500)
    if isinstance(board, GpioBoard):
        mcu.on_power_fail = lambda active, t_us: board.on_change(active, t_us)
    link = McuLink(mcu.bus)
    link.open()
    watch = PowerFailWatch(
        link,
        board,
        clock,
        lambda t_us, holdup_ms: events.append(("warning", t_us, holdup_ms)),
        busy=lambda: busy,
        on_restored=lambda t_us: events.append(("restored", t_us)),
    )
    return clock, mcu, watch, events


def test_a_busy_box_polls_the_status_and_hears_the_warning_within_a_poll():
    clock, mcu, watch, events = rig(NoGpioBoard())
    assert watch.source == "i2c"
    clock.run_until(1_000_000)
    mcu.cut_power()
    clock.run_until(1_500_000)
    ((kind, t_us, holdup_ms),) = events
    assert kind == "warning" and 1_002_000 <= t_us <= 1_002_000 + BUSY_POLL_MS * 1000
    # The MCU's figure: C (V^2 - Vmin^2) / 2P, 2.5 F from 5.1 V to 2.5 V at 4 W, about 6.2 s.
    assert 6_000 <= holdup_ms <= 6_200


def test_an_idle_box_polls_once_a_second():
    clock, mcu, watch, events = rig(NoGpioBoard(), busy=False)
    clock.run_until(1_000_000)
    mcu.cut_power()
    clock.run_until(2_100_000)
    assert events and 1_002_000 <= events[0][1] <= 1_000_000 + IDLE_POLL_MS * 1000


def test_the_gpio_edge_warns_at_once_and_the_power_coming_back_is_reported():
    board = GpioBoard()
    clock, mcu, watch, events = rig(board)
    assert watch.source == "gpio"
    clock.run_until(500_000)
    mcu.cut_power()
    clock.run_until(1_000_000)
    # The MCU's 2 ms debounce, checked on its next millisecond tick.
    assert [e[0] for e in events] == ["warning"] and 502_000 <= events[0][1] <= 503_000
    mcu.restore_power()  # a dip the capacitor rides out
    clock.run_until(2_000_000)
    assert [e[0] for e in events] == ["warning", "restored"]
    # The MCU clears the warning after 500 ms of good supply; the watch polls every 100 ms.
    assert 1_500_000 <= events[1][1] <= 1_700_000
    mcu.cut_power()  # the watch is done: one warning per box
    clock.run_until(3_000_000)
    assert len(events) == 2


def test_closed_it_polls_no_more():
    clock, mcu, watch, events = rig(NoGpioBoard())
    watch.close()
    mcu.cut_power()
    clock.run_until(2_000_000)
    assert events == []


def test_a_busy_box_polls_every_20_ms_and_slows_down_within_a_second_of_going_idle():
    clock = SimClock()
    mcu = SimMcu(clock, farads=2.5, load_mw=4000, min_mv=2500)
    link = McuLink(mcu.bus)
    link.open()
    reads, asked, busy = [], [], [True]
    power_fail = link.power_fail
    link.power_fail = lambda: reads.append(clock.now_us()) or power_fail()
    PowerFailWatch(
        link, NoGpioBoard(), clock, lambda t_us, holdup_ms: None, busy=lambda: asked.append(1) or busy[0]
    )
    clock.run_until(3_000_000)
    gaps = {b - a for a, b in zip(reads, reads[1:], strict=False)}
    assert gaps == {BUSY_POLL_MS * 1000} and len(reads) == 3_000 // BUSY_POLL_MS
    assert len(asked) <= 4  # once a second while busy, not at every poll
    busy[0] = False
    n = len(reads)
    clock.run_until(10_000_000)
    slow = [b - a for a, b in zip(reads[n:], reads[n + 1 :], strict=False)]
    assert set(slow[-5:]) == {IDLE_POLL_MS * 1000}
    assert len(reads) - n <= 1_000 // BUSY_POLL_MS + 7  # the busy rate lasted at most a second
