"""The interface between the shared scheduler and a place that runs steps."""

from __future__ import annotations

import abc
import dataclasses
import queue

from controller import plan as plan_mod


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a step's process (or Job) ended; the scheduler still checks the store for its commit."""

    exit_code: int | None
    """The command's exit status (None if it never ran or was killed)."""
    reason: str = ""
    """One line on what happened when it failed."""
    log_tail: str = ""
    """The last lines of its log, for the sweep status."""
    log_missing: str = ""
    """Why its log could not be kept in the store (e.g. its pod was deleted first); empty when it was."""


@dataclasses.dataclass(frozen=True)
class Waiting:
    """Why a started step does not run yet (e.g. its pod cannot pull its image, or finds no node)."""

    why: str
    """The cause in one line, e.g. ``ImagePullBackOff: Back-off pulling image "x"``."""
    line: str
    """``why`` and what changes while it lasts: where, for how long so far."""
    queued: bool = False
    """The step waits in a queue (its Job is suspended until, e.g., Kueue admits it): it shows as ``queued``,
    not ``running``, and its Job's ``activeDeadlineSeconds`` starts only when it runs."""


class Executor(abc.ABC):
    """Starts steps and reports their ends. All methods are called from one thread."""

    @abc.abstractmethod
    def can_start(self, step: plan_mod.Step, running: list[plan_mod.Step]) -> bool:
        """Whether ``step`` may start now, given the steps already running (concurrency limits)."""

    @abc.abstractmethod
    def start(self, step: plan_mod.Step) -> None:
        """Launch the step; return at once."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> list[tuple[plan_mod.Step, Outcome]]:
        """Steps that ended since the last call, waiting at most ``timeout`` seconds for one."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop every running step (the sweep is being interrupted)."""

    def check(self, plan: plan_mod.Plan) -> None:  # an optional hook: deliberately not abstract
        """Before any step starts: raise ``errors.BadInput`` (one line) for a step this executor cannot run as
        configured (e.g. a Kubernetes setting that contradicts the sweep), so that nothing runs for nothing."""

    def waiting(self) -> dict[str, Waiting]:  # an optional hook: deliberately not abstract
        """Step key -> why that started step does not run yet, for the steps the executor knows to be stuck."""
        return {}

    def close(self) -> None:  # an optional hook: deliberately not abstract
        """Release what the executor holds (threads, connections) once the sweep is over. Steps still
        running: the Kubernetes executor leaves its Jobs (a rerun adopts them); the local executor stops
        its processes, which must not outlive the controller."""


def drain(done: queue.Queue[tuple[plan_mod.Step, Outcome]], timeout: float) -> list[tuple[plan_mod.Step, Outcome]]:
    """Ends reported on ``done``: wait up to ``timeout`` for the first, then take what else is there."""
    ended = []
    try:
        ended.append(done.get(timeout=timeout))
        while True:
            ended.append(done.get_nowait())
    except queue.Empty:
        pass
    return ended
