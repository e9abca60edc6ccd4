"""``assert_linear``: catch super-linear text processing by timing one input against a 100x larger one.

Absolute times say nothing on a shared machine, but ratios do: a linear function takes ~100x as long on an
input 100x larger, an n log n one ~150x, a quadratic one ~10 000x. So the test times ``func(make_input(n))``
for a small and a large ``n`` and asserts the ratio stays under ``max_ratio`` (300 by default: room for
noise and cache effects, far below what any quadratic path gives).

Timing rules that keep the ratio honest: the garbage collector is paused while timing; the small input is
run in a loop long enough to be measured (a 20 µs call alone is mostly clock noise, and noise there would
inflate the ratio); each size keeps its best of two runs, and is not re-run once a run is under the
limit, so a passing test usually runs the large input once.

A failing test must fail, not hang: a quadratic path that takes 0.5 s on 10 KB takes hours on 1 MB. So an
input 10x the small one is timed first, against the same slope (30x for a 300x limit at 100x), and every
run is stopped by a CPU-time timer (``SIGPROF``; Python's regex engine checks for signals too) once it has
used the time that already means failure. All times are CPU times of this process, so a loaded machine
does not skew them.

``make_input(n)`` builds an input of about ``n`` bytes or characters of the worst shape for the path under
test (a run of spaces, a header folded thousands of times, ...); only ``func`` is timed, never the building.
"""

from __future__ import annotations

import contextlib
import gc
import math
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["assert_linear", "time_call"]

_MIN_SMALL_TIME = 0.02  # seconds: how long the loop over the small input must run to be measured
_SMALL_RUNS = 5
_TIMER_SLACK = 0.05  # seconds added to a run's budget: timer granularity, a page fault or two


class _Overtime(Exception):
    """Raised by the timer inside a run that has used its budget."""


def time_call(func: Callable[[Any], Any], arg: Any, loops: int = 1) -> float:
    """CPU seconds per call of ``func(arg)``, averaged over ``loops`` calls, the collector paused. CPU
    time, not wall time: other processes on a shared machine (a fuzzer, a parallel test) leave it alone."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(loops):
            func(arg)
        return (time.process_time() - start) / loops
    finally:
        if enabled:
            gc.enable()


def _bounded_call(func: Callable[[Any], Any], arg: Any, budget: float) -> float:
    """``time_call(func, arg)``, or infinity when it is stopped after ``budget`` seconds."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return time_call(func, arg)  # no timer here: the run goes to its end
    armed = True

    def on_alarm(signum, frame):
        if armed:
            raise _Overtime

    # ITIMER_PROF counts this process's CPU time, as time_call measures it (SIGPROF)
    previous = signal.signal(signal.SIGPROF, on_alarm)
    signal.setitimer(signal.ITIMER_PROF, budget)
    try:
        return time_call(func, arg)
    except _Overtime:
        return math.inf
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def _small_time(func: Callable[[Any], Any], arg: Any) -> float:
    loops = 1
    while True:  # grow the loop until one measurement lasts long enough (as timeit's autorange does)
        spent = time_call(func, arg, loops) * loops
        if spent >= _MIN_SMALL_TIME or loops >= 1 << 20:
            break
        loops *= 2 if spent * 10 > _MIN_SMALL_TIME else 10
    return min([spent / loops] + [time_call(func, arg, loops) for _ in range(_SMALL_RUNS - 1)])


def _best_under(func: Callable[[Any], Any], arg: Any, limit: float, runs: int) -> float:
    """Best of up to ``runs`` timed runs, stopping at the first under ``limit`` seconds; each run is
    stopped once it is over the limit (then it counts as infinitely long)."""
    best = math.inf
    for _ in range(runs):
        with contextlib.suppress(_Overtime):  # the timer went off between the run's end and its cancelling
            best = min(best, _bounded_call(func, arg, limit + _TIMER_SLACK))
        if best < limit:
            break
    return best


def assert_linear(func: Callable[[Any], Any], make_input: Callable[[int], Any], small: int = 10_000,
                  large: int = 1_000_000, max_ratio: float = 300.0, runs: int = 2) -> float:
    """Assert that ``func(make_input(large))`` takes under ``max_ratio`` times ``func(make_input(small))``.

    ``large`` should be 100 x ``small`` (the defaults: 10 KB and 1 MB); ``max_ratio`` is for that factor.
    Exceptions from ``func`` propagate (a hostile input must not crash either). Returns the ratio measured,
    for a test that wants to print it.
    """
    small_input = make_input(small)
    gc.collect()
    t_small = _small_time(func, small_input)
    name = getattr(func, "__qualname__", repr(func))
    medium = round(math.sqrt(small * large))
    for size, limit in ((medium, max_ratio * medium / large), (large, max_ratio)):
        arg = make_input(size)
        t = _best_under(func, arg, limit * t_small, runs)
        ratio = t / t_small if t_small > 0 else math.inf
        assert ratio < limit, (
            f"{name} is super-linear: {t_small * 1e3:.3f} ms for an input of size {small:,} but "
            + (f"{t * 1e3:.1f} ms" if t < math.inf else f"over {limit * t_small * 1e3:.0f} ms (stopped)")
            + f" for size {size:,} ({ratio:.0f}x; a linear function takes ~{size / small:.0f}x, the limit is "
            f"{limit:.0f}x)")
        del arg
    return ratio

