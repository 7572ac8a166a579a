"""Runs each step as a subprocess on this machine, ``python -m jobs.stages.<stage> ...``, as a pod would.

Independent steps run concurrently up to a limit (default: the number of cores); an inference
step runs alone, so that nothing else on the machine disturbs its timings.

Step processes end with the controller: each runs in its own process group (a new session), which
``stop`` terminates (SIGTERM, then SIGKILL after ``STOP_GRACE_S``) when the sweep is interrupted; and on
Linux each stage, given the controller's pid in ``GHOSTBENCH_CONTROLLER_PID``, asks the kernel for SIGTERM
when the controller dies (``PR_SET_PDEATHSIG``, ``jobs.stages.cli``), which covers a controller killed with
SIGKILL, which runs no handler. (The signal follows the controller's thread that started the step: the
runner's main thread, which lives as long as the controller.) The stage asks for it itself rather than in a
``preexec_fn``, which would make every start a full fork of the controller (3 ms a step, measured).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from typing import IO

from controller import plan as plan_mod
from controller.executors import base
from jobs import params
from jobs import store as store_mod

TAIL_LINES = 20
STOP_GRACE_S = 10.0


def _tail(path: pathlib.Path, lines: int = TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


class LocalExecutor(base.Executor):
    def __init__(self, store: store_mod.Store, max_parallel: int | None = None,
                 python: str = sys.executable):
        self.store = store
        self.max_parallel = max_parallel or os.cpu_count() or 1
        self.python = python
        self._done: queue.Queue[tuple[plan_mod.Step, base.Outcome]] = queue.Queue()
        self._procs: dict[str, subprocess.Popen] = {}
        self._scratch = tempfile.TemporaryDirectory(prefix="ghostbench-logs-")

    def can_start(self, step: plan_mod.Step, running: list[plan_mod.Step]) -> bool:
        if step.exclusive:
            return not running
        return len(running) < self.max_parallel and not any(s.exclusive for s in running)

    def _log_path(self, step: plan_mod.Step) -> tuple[pathlib.Path, bool]:
        """Where the step's log is written: in the store when it is local, else a scratch file to upload."""
        local = self.store.local_path(step.log)
        if local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            return local, False
        return pathlib.Path(self._scratch.name) / f"{step.key}.log", True

    def start(self, step: plan_mod.Step) -> None:
        log_path, upload = self._log_path(step)
        log: IO[bytes] = open(log_path, "wb")
        cmd = [self.python, *step.command()]
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1",
                                         params.CONTROLLER_PID_ENV: str(os.getpid())},
                                    start_new_session=True)
        except OSError as e:
            log.close()
            self._done.put((step, base.Outcome(None, f"could not start: {e}")))
            return
        self._procs[step.key] = proc

        def reap() -> None:
            code = proc.wait()
            log.close()
            if upload:
                with contextlib.suppress(Exception):  # a lost log must not fail the step
                    self.store.put_file(step.log, log_path)
            reason = "" if code == 0 else f"exit code {code}"
            self._done.put((step, base.Outcome(code, reason, _tail(log_path) if code else "")))

        threading.Thread(target=reap, name=f"reap-{step.key}", daemon=True).start()

    def wait(self, timeout: float) -> list[tuple[plan_mod.Step, base.Outcome]]:
        ended = base.drain(self._done, timeout)
        for step, _ in ended:
            self._procs.pop(step.key, None)
        return ended

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        """``sig`` to the step's process group (its own session: the stage and whatever it started)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    def stop(self) -> None:
        procs = list(self._procs.values())
        for proc in procs:
            self._signal(proc, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        """Steps still running when the controller leaves are stopped: they must not outlive it."""
        if any(proc.poll() is None for proc in self._procs.values()):
            self.stop()
