"""The loop's turn times: the wait for input is left out, each report
covers the turns since the one before."""

from wwnode.turns import MAX_KEPT, TurnTimes


class Clock:
    def __init__(self):
        self.t = 100.0
        self.cpu = 5.0

    def __call__(self):
        return self.t

    def cpu_time(self):
        return self.cpu


def timed(clock: Clock) -> TurnTimes:
    return TurnTimes(clock, clock.cpu_time)


def turn(times: TurnTimes, clock: Clock, busy: float, waited: float, cpu: float | None = None) -> None:
    times.begin()
    clock.t += busy + waited
    clock.cpu += busy if cpu is None else cpu
    times.waited(waited)
    times.end()


def test_a_turn_counts_its_work_not_its_wait():
    clock = Clock()
    times = timed(clock)
    # 10 ms of wall time for 1 ms of CPU: the rest it waited for a core.
    turn(times, clock, busy=0.010, waited=0.25, cpu=0.001)
    assert times.report() == {"loop_turns": 1, "loop_turn_p99_ms": 10.0, "loop_turn_max_ms": 10.0,
                              "loop_turn_cpu_p99_ms": 1.0}


def test_p99_and_max_of_the_window_then_a_new_window():
    clock = Clock()
    times = timed(clock)
    for _ in range(99):
        turn(times, clock, busy=0.001, waited=0.1)
    turn(times, clock, busy=0.5, waited=0.0)
    first = times.report()
    assert first["loop_turns"] == 100 and first["loop_turn_max_ms"] == 500.0
    assert first["loop_turn_p99_ms"] == 500.0  # the 100th of 100 is the 99th percentile's rank
    assert times.report() == {"loop_turns": 0, "loop_turn_p99_ms": 0.0, "loop_turn_max_ms": 0.0,
                              "loop_turn_cpu_p99_ms": 0.0}


def test_a_turn_that_returned_early_is_not_counted():
    clock = Clock()
    times = timed(clock)
    times.begin()  # the loop stopped before the turn's end
    times.begin()
    clock.t += 0.002
    times.end()
    assert times.report()["loop_turns"] == 1


def test_a_long_window_keeps_a_bounded_sample():
    clock = Clock()
    times = timed(clock)
    for _ in range(MAX_KEPT * 2 + 1):
        turn(times, clock, busy=0.001, waited=0.0)
    assert len(times._busy) < MAX_KEPT
    assert times.report()["loop_turns"] == MAX_KEPT * 2 + 1
