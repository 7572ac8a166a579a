"""Sweep progress on stderr: a line per event, and a live status line with a bar on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from controller import runner


class ProgressDisplay:
    def __init__(self, stream: TextIO = sys.stderr, width: int = 24, clock=time.monotonic):
        self.stream = stream
        self.live = stream.isatty()
        self.width = width
        self.clock = clock
        self._t0 = clock()
        self._started: dict[str, float] = {}

    def __call__(self, statuses: dict[str, runner.StepStatus], event: str) -> None:
        total = len(statuses)
        counts = {state: 0 for state in (runner.DONE, runner.RUNNING, runner.QUEUED, runner.PENDING, runner.FAILED,
                                         runner.BLOCKED)}
        for s in statuses.values():
            counts[s.state] += 1
        now = self.clock()
        running = [k for k, s in statuses.items() if s.state == runner.RUNNING]
        for k in running:
            self._started.setdefault(k, now)
        done = counts[runner.DONE]
        filled = int(self.width * done / total) if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        summary = (f"[{bar}] {done}/{total} done, {counts[runner.RUNNING]} running, "
                   + (f"{counts[runner.QUEUED]} queued, " if counts[runner.QUEUED] else "")
                   + f"{counts[runner.PENDING]} pending"
                   + (f", {counts[runner.FAILED]} failed" if counts[runner.FAILED] else "")
                   + (f", {counts[runner.BLOCKED]} blocked" if counts[runner.BLOCKED] else ""))
        if event:
            self._clear()
            print(f"{now - self._t0:7.1f}s {event}", file=self.stream)
            if not self.live:
                print(f"         {summary}", file=self.stream)
        if self.live:
            current = ", ".join(f"{statuses[k].title} {now - self._started[k]:.0f}s" for k in running[:3])
            line = f"{summary}" + (f" | {current}" if current else "")
            self.stream.write("\r\x1b[K" + line[:200])
            self.stream.flush()

    def _clear(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")

    def close(self) -> None:
        self._clear()
        if self.live:
            self.stream.flush()
