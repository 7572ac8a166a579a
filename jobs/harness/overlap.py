"""Overlapping the harness's own work with the backend's compute.

The infer stage calls the backend from its main thread only (Ascend's ACL binds a context to the
thread that made it). While that call runs, with the GIL released, one thread reads the next
batches from the store (``prefetch``) and another ranks and writes the finished ones
(``InOrderWorker``), so reading and top-k cost the measured pass almost nothing.
"""

from __future__ import annotations

import collections
import concurrent.futures
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_END = object()


class _Raised:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The items of ``items``, produced by a background thread up to ``depth`` ahead.

    An exception in the producer is raised here, at the item where it happened. Leaving the loop
    early stops the producer (it finishes the item in hand, then ends).
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put(item)
            slots.put(_END)
        except BaseException as e:  # noqa: BLE001 (handed to the consumer, which raises it)
            slots.put(_Raised(e))

    thread = threading.Thread(target=produce, name="ghostbench-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting for a free slot
            try:
                slots.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


class InOrderWorker:
    """Runs submitted calls one at a time, in submission order, on one background thread.

    At most ``backlog`` calls wait; ``submit`` blocks beyond that, so a slow consumer holds the
    producer back instead of growing memory. The first failure is raised by the next ``submit``
    or by ``finish``.
    """

    def __init__(self, backlog: int = 4):
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghostbench-post")
        self._pending: collections.deque[concurrent.futures.Future] = collections.deque()
        self._backlog = backlog

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        while self._pending and (self._pending[0].done() or len(self._pending) >= self._backlog):
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(fn, *args))

    def finish(self) -> None:
        """Wait for every submitted call; raise the first failure."""
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> InOrderWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self._pending:
            f.cancel()
        self._pool.shutdown(wait=True)
