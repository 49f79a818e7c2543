"""Progress of long steps in the log: items done, rate and time left, at a rate a log file can bear."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

DEFAULT_INTERVAL_S = 30.0


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (or ``M:SS`` under an hour) of a duration in seconds."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressLog:
    """Log lines ``<what>: done/total <unit> (percent), rate, time left``, at most one per ``interval``.

    A line is written when at least ``interval`` seconds have passed since the last one, and once when
    the total is reached, so a log file gets a bounded number of lines however fast the items come.

    Parameters
    ----------
    total
        Number of items of the whole step.
    what
        Name of the step, starting each line.
    unit
        Name of the items (plural), e.g. ``"regions"``.
    logger
        Logger written to, at INFO level.
    interval
        Least seconds between two lines.
    clock
        Monotonic clock in seconds (``time.monotonic``).
    """

    def __init__(self, total: int, what: str, unit: str, logger: logging.Logger,
                 interval: float = DEFAULT_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.total, self.what, self.unit, self.logger = total, what, unit, logger
        self.interval, self.clock = interval, clock
        self.started = self.last = clock()
        self.done = 0
        self.finished = False

    def advance_to(self, done: int) -> None:
        """Record that ``done`` items are complete; log a line when one is due."""
        self.done = min(done, self.total)
        now = self.clock()
        complete = self.done >= self.total
        if self.finished or not (complete or now - self.last >= self.interval):
            return
        self.last, self.finished = now, complete
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        self.logger.info("%s: %d/%d %s (%.0f%%), %.3g %s/s, %s elapsed, %s left", self.what, self.done, self.total,
                         self.unit, 100 * self.done / max(self.total, 1), rate, self.unit,
                         format_duration(elapsed), format_duration(left) if left == left else "unknown")
