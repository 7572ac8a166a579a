"""Several devices of one host at once: one process per device, started together, as ais_bench measures a card.

ais_bench (``--device 0,1,2,3``; ``ais_bench/infer/benchmark_process.py`` ``multidevice_run``) starts one process
per device; each loads its model and warms up, then waits until every process is ready or 10 s have passed
("force ready run"), runs, and reports its throughput with its start and end time; the card's figure is their sum
("summary throughput"). ``run`` does the same with a ``multiprocessing`` barrier (``START_TIMEOUT_S``) that every
worker passes before each timed repetition, so the devices' timed windows coincide in every repetition, not only
the first. A worker that fails, or whose process dies, aborts the barrier as soon as it happens (the parent watches
every worker at once; the others stop at their next gate instead of waiting it out); one that does not come within
the timeout lets the others start alone, and the run records that it did (``Gate.together`` false), as ais_bench's
log does. A worker ends with the process that started it (Linux ``PR_SET_PDEATHSIG``): an infer stage killed with
SIGTERM (its controller gone, ``jobs.stages.cli``) leaves no device process running on.

Workers are started with ``spawn``: a fresh interpreter per device, so that no device runtime (ACL, CUDA) or lock
held by a thread of the parent is inherited half-initialized, as ``fork`` would. The worker function and its
arguments must be picklable (module-level functions, dataclasses).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing import connection
from typing import Any

from jobs import errors
from jobs.harness import lifetime

log = logging.getLogger("ghostbench.infer")

START_TIMEOUT_S = 120.0
"""How long a worker waits at a gate for the others (model load and warm-up on a real chip take seconds; ais_bench
waits 10 s after its own warm-up). Past it, the worker starts alone and its run is marked not started together."""


class Gate:
    """The start barrier shared by the workers of one run (``passes.run``'s ``gate``)."""

    def __init__(self, barrier: Any, failed: Any, timeout_s: float):
        self._barrier, self._failed, self._timeout_s = barrier, failed, timeout_s
        self.together = True
        """Every gate so far released every worker at once."""
        self.waits = 0
        self.released_at: list[float] = []
        """``time.monotonic()`` when each gate released this worker (one clock for every process of a host:
        CLOCK_MONOTONIC on Linux)."""

    def __call__(self) -> None:
        """Wait for the other workers; ``GhostbenchError`` when one of them failed."""
        self.waits += 1
        if self.together and not self._failed.is_set():
            try:
                self._barrier.wait(self._timeout_s)
            except threading.BrokenBarrierError:
                pass
            else:
                self.released_at.append(time.monotonic())
                return
        if self._failed.is_set():
            raise errors.GhostbenchError("another device of this run failed")
        if self.together:
            log.warning("infer: the devices did not all come to the start within %g s; this one starts alone",
                        self._timeout_s)
        self.together = False
        self.released_at.append(time.monotonic())

    def abort(self) -> None:
        """This worker failed: the others stop at their next gate."""
        self._failed.set()
        self._barrier.abort()


@dataclasses.dataclass(frozen=True)
class _Done:
    result: Any
    together: bool


@dataclasses.dataclass(frozen=True)
class _Failure:
    exit_code: int
    message: str
    kind: str


def _child(fn: Callable[..., Any], index: int, gate: Gate, args: tuple[Any, ...], conn: Any, parent: int) -> None:
    """A worker process: ``fn(index, gate, *args)``; its result, or its failure as one line, sent to the parent."""
    lifetime.die_with(parent)
    try:
        result: Any = _Done(fn(index, gate, *args), gate.together)
    except BaseException as e:  # noqa: BLE001 - everything a worker raises is the parent's to report
        gate.abort()
        code = e.exit_code if isinstance(e, errors.GhostbenchError) else errors.EXIT_FAILURE
        result = _Failure(code, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__,
                          type(e).__name__)
    try:
        conn.send(result)
    finally:
        conn.close()


def run(fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], names: Sequence[str],
        start_timeout_s: float = START_TIMEOUT_S) -> tuple[list[Any], bool]:
    """``fn(i, gate, *args[i])`` in one process per entry of ``args``, all at once; (their results in order, whether
    every gate released them together).

    ``names``: each worker's device, for errors. Raises the error class of the first worker that failed (its exit
    code kept: ``BadInput`` for bad input, ``MissingDependency``, else ``GhostbenchError``), with its one line,
    prefixed by its device; the other workers are stopped at their next gate as soon as one fails or its process ends
    without a result, and all are joined first. Interrupted (``KeyboardInterrupt``, any exception while waiting), it
    terminates and joins the workers before raising."""
    ctx = multiprocessing.get_context("spawn")
    barrier, failed = ctx.Barrier(len(args)), ctx.Event()
    procs, conns = [], []
    for i, a in enumerate(args):
        parent_end, child_end = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_child, args=(fn, i, Gate(barrier, failed, start_timeout_s), a, child_end, os.getpid()),
                        name=f"ghostbench-infer-{names[i]}", daemon=True)
        p.start()
        child_end.close()
        procs.append(p)
        conns.append(parent_end)
    results: list[Any] = [None] * len(procs)
    pending = {conn: i for i, conn in enumerate(conns)}
    try:
        while pending:  # every worker at once: a failure anywhere stops the others now, not after the earlier ones
            for conn in connection.wait(list(pending)):
                i = pending.pop(conn)
                try:
                    results[i] = conn.recv()
                except EOFError:  # its end closed without a result: the process died
                    results[i] = None
                finally:
                    conn.close()
                if not isinstance(results[i], _Done):
                    failed.set()
                    barrier.abort()
    except BaseException:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join()
        raise
    for p in procs:
        p.join()
    first: tuple[int, Any] | None = None
    for i, (p, r) in enumerate(zip(procs, results)):
        if r is None:
            r = _Failure(errors.EXIT_FAILURE, f"its process ended without a result (exit code {p.exitcode})",
                         "GhostbenchError")
            results[i] = r
        if isinstance(r, _Failure) and (first is None or (first[1].message == "another device of this run failed"
                                                          and r.message != first[1].message)):
            first = (i, r)
    if first is not None:
        i, f = first
        cls = {errors.EXIT_BAD_INPUT: errors.BadInput,
               errors.EXIT_MISSING_DEPENDENCY: errors.MissingDependency}.get(f.exit_code, errors.GhostbenchError)
        raise cls(f"device {names[i]}: {f.message}")
    return [r.result for r in results], all(r.together for r in results)
