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
    # Read as the box starts (t 0), then every 20 ms.
    assert reads[0] == 0 and gaps == {BUSY_POLL_MS * 1000} and len(reads) == 3_000 // BUSY_POLL_MS + 1
    assert len(asked) <= 4  # once a second while busy, not at every poll
    busy[0] = False
    n = len(reads)
    clock.run_until(10_000_000)
    slow = [b - a for a, b in zip(reads[n:], reads[n + 1 :], strict=False)]
    assert set(slow[-5:]) == {IDLE_POLL_MS * 1000}
    assert len(reads) - n <= 1_000 // BUSY_POLL_MS + 7  # the busy rate lasted at most a second


def test_a_box_started_under_the_warning_hears_it(monkeypatch):
    """A box started while the MCU still warns: on a GPIO line already up no edge comes,
    so the warning was never heard, and the next cut found the box unwarned. The status
    read as the box starts hears it, by GPIO or by I2C."""
    for board in (GpioBoard(), NoGpioBoard()):
        clock = SimClock()
        mcu = SimMcu(clock, farads=2.5, load_mw=4000, min_mv=2500)
        mcu.cut_power()
        clock.run_until(100_000)  # the warning is up
        link = McuLink(mcu.bus)
        link.open()
        heard = []
        PowerFailWatch(
            link, board, clock, lambda t_us, holdup_ms, heard=heard: heard.append(t_us), busy=lambda: False
        )
        clock.run_until(101_000)
        assert heard == [100_000], board


def test_a_call_starting_on_an_idle_box_makes_it_poll_at_once():
    """An idle box polls once a second; the box's busyness was asked only then, so a
    warning during a call just begun came up to a second late (and the call's end with
    it). wake(), a line no longer idle, polls now and at the busy rate."""
    clock, mcu, watch, events = rig(NoGpioBoard(), busy=False)
    clock.run_until(1_000_000)
    busy = [True]
    watch.busy = lambda: busy[0]
    watch.wake()
    mcu.cut_power()
    clock.run_until(1_100_000)
    assert events and events[0][1] <= 1_002_000 + BUSY_POLL_MS * 1000


def test_an_mcu_that_stops_answering_is_reported_once_and_again_when_it_answers(caplog):
    """It was logged at every poll (50 a second during a call, to the card) and no one
    was told that the warning could no longer come."""
    clock = SimClock()
    mcu = SimMcu(clock, farads=2.5, load_mw=4000, min_mv=2500)
    link = McuLink(mcu.bus)
    link.open()
    said, real = [], link.power_fail
    dead = [False]

    def power_fail():
        if dead[0]:
            from board.mcu.link import McuError

            raise McuError("the supervisor MCU did not answer")
        return real()

    link.power_fail = power_fail
    watch = PowerFailWatch(
        link,
        NoGpioBoard(),
        clock,
        lambda *a: None,
        busy=lambda: True,
        on_unreachable=lambda on, t: said.append((on, t)),
    )
    clock.run_until(1_000_000)
    dead[0] = True
    clock.run_until(10_000_000)
    assert said == [(True, said[0][1])] and 3_000_000 <= said[0][1] <= 3_020_000 and watch.unreachable
    assert sum("did not answer" in r.getMessage() for r in caplog.records) == 1  # not 450 times
    dead[0] = False
    clock.run_until(11_000_000)
    assert [on for on, _ in said] == [True, False] and not watch.unreachable
