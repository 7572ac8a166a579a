"""Progress lines on stderr for long work, at most one every few seconds."""

from __future__ import annotations

import logging
import time


class Progress:
    def __init__(self, what: str, total: int, log: logging.Logger, every_s: float = 5.0,
                 clock=time.monotonic):
        self.what, self.total, self.log, self.every_s, self.clock = what, total, log, every_s, clock
        self.done = 0
        self._t0 = clock()
        self._last = self._t0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if now - self._last >= self.every_s:
            self._last = now
            self._emit(now)

    def finish(self) -> None:
        self._emit(self.clock())

    def _emit(self, now: float) -> None:
        elapsed = max(now - self._t0, 1e-9)
        rate = self.done / elapsed
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        self.log.info("%s: %d/%d (%.0f%%), %.1f/s, %.0fs elapsed, eta %.0fs",
                      self.what, self.done, self.total, pct, rate, elapsed, eta)
