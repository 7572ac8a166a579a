"""A sweep's lease: one controller at a time runs a sweep, on a directory store or a bucket alike.

``sweeps/<id>/lease.json`` (owner, host, pid and its start time, started, renewed, expires) is created only
where there is none (``Store.create_exclusive``) and renewed every ``RENEW_S`` seconds by a thread; a
second controller gets ``SweepBusy`` (exit 2) naming the holder; a holder that is gone (dead pid on this
host, or no renewal for ``TTL_S``) is taken over behind an exclusive marker, and a controller that finds
its lease taken stops (``LeaseLost``). The rules as users see them: ``docs/architecture.md`` ("One
controller per sweep").
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from jobs import errors
from jobs import store as store_mod
from jobs.store import base as store_base

log = logging.getLogger("ghostbench.lease")

LEASE = "lease.json"
TTL_S = 120.0
"""A lease not renewed for this long has expired: its holder is taken to be gone."""
RENEW_S = 30.0
"""How often the holder renews its lease."""
ATTEMPTS = 5
_HELD: set[str] = set()
"""Owner ids of the leases this process holds now."""


class SweepBusy(errors.BadInput):
    """Another controller holds the sweep's lease (exit 2)."""


class LeaseLost(errors.GhostbenchError):
    """Another controller took the lease over while this one ran (exit 1)."""


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="milliseconds")


def _parse_time(text: Any) -> float | None:
    try:
        return datetime.datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a lease, read from its document."""

    doc: dict[str, Any]

    @property
    def owner(self) -> str:
        return str(self.doc.get("owner", ""))

    def describe(self) -> str:
        d = self.doc
        return f"host {d.get('host', '?')} pid {d.get('pid', '?')} since {d.get('started', '?')}"

    def gone(self, now: float | None = None) -> str | None:
        """Why the holder is gone (its pid does not run on this host, or the lease expired), or None if it
        may still be running."""
        d = self.doc
        now = time.time() if now is None else now
        if d.get("host") == socket.gethostname():
            try:
                pid = int(d.get("pid", 0))
            except (TypeError, ValueError):
                pid = 0
            started = d.get("pid_start") or None
            if pid == os.getpid() and started == (store_base.pid_start(pid) or None):
                # this very process: held now, or left by an earlier sweep it ran that could not remove it
                return None if self.owner in _HELD else "left behind by an earlier run in this process"
            if not store_base.pid_alive(pid, started):
                return f"pid {d.get('pid')} no longer runs on this host"
            if started and store_base.pid_start(pid) == started:
                return None  # that very process runs here: it holds the lease, renewed or not
        expires = _parse_time(d.get("expires"))
        if expires is None:
            return "the lease has no valid expiry"
        if now > expires:
            return f"the lease expired at {d.get('expires')} (not renewed for {TTL_S:g}s)"
        return None


def read(store: store_mod.Store, directory: str) -> tuple[Holder | None, bytes | None]:
    """The lease in ``directory`` (a sweep's folder) and its bytes; (None, None) when there is none. A lease
    that is not a JSON object is returned as a holder with an empty document (gone: no expiry)."""
    name = f"{directory}/{LEASE}"
    try:
        data = store.read_bytes(name)
    except errors.StoreError:
        if store.exists(name):
            raise
        return None, None
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        doc = None
    return Holder(doc if isinstance(doc, dict) else {}), data


class Lease:
    """The lease on one sweep, for this process: ``acquire``, then ``check`` now and then, then ``release``."""

    def __init__(self, store: store_mod.Store, sweep: str, directory: str, ttl_s: float = TTL_S,
                 renew_s: float = RENEW_S, clock: Callable[[], float] = time.time):
        self.store = store
        self.sweep = sweep
        self.directory = directory
        self.name = f"{directory}/{LEASE}"
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.clock = clock
        self.owner = uuid.uuid4().hex
        self._started = clock()
        self._expires = 0.0
        self._held = False
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _doc(self) -> bytes:
        now = self.clock()
        self._expires = now + self.ttl_s
        doc = {"sweep": self.sweep, "owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
               "pid_start": store_base.pid_start(os.getpid()) or "", "started": _iso(self._started),
               "renewed": _iso(now), "expires": _iso(self._expires), "ttl_s": self.ttl_s}
        return (json.dumps(doc, indent=1) + "\n").encode()

    def _busy(self, holder: Holder, what: str = "is already running") -> SweepBusy:
        return SweepBusy(f"sweep {self.sweep} {what}: {holder.describe()} (lease {self.store.uri}/{self.name}, "
                         f"renewed {holder.doc.get('renewed', '?')}); wait for it to end, or stop that controller")

    def acquire(self) -> str | None:
        """Take the lease, or raise ``SweepBusy``. Returns a one-line message when a stale lease was taken over."""
        holder: Holder | None = None
        for _ in range(ATTEMPTS):
            if self.store.create_exclusive(self.name, self._doc()):
                self._start()
                return None
            holder, data = read(self.store, self.directory)
            if holder is None or data is None:
                continue  # released in between: try again
            why = holder.gone(self.clock())
            if why is None:
                raise self._busy(holder)
            if self._take_over(data):
                self._start()
                return (f"sweep {self.sweep}: took over the lease of a controller that is gone ({holder.describe()}: "
                        f"{why})")
        if holder is None:
            raise SweepBusy(f"sweep {self.sweep}: its lease {self.store.uri}/{self.name} keeps appearing and "
                            "disappearing (other controllers starting and ending); try again")
        raise self._busy(holder, "is being started by another controller")

    def _take_over(self, stale: bytes) -> bool:
        marker = f"{self.directory}/lease-takeover-{hashlib.sha256(stale).hexdigest()[:16]}.json"
        mine = self._doc()
        # while this owner takes over, its marker is held: another taker in this same process must not take
        # the marker for one "left behind" (Holder.gone judges this process's owners by _HELD)
        _HELD.add(self.owner)
        taken = False
        try:
            taken = self._take_over_with(marker, stale, mine)
            return taken
        finally:
            if not taken:
                _HELD.discard(self.owner)

    def _take_over_with(self, marker: str, stale: bytes, mine: bytes) -> bool:
        if not self.store.create_exclusive(marker, mine):
            try:
                doc = json.loads(self.store.read_bytes(marker))
            except (errors.StoreError, ValueError, UnicodeDecodeError):
                return False  # gone meanwhile: the next attempt sees
            other = Holder(doc if isinstance(doc, dict) else {})
            if other.gone(self.clock()) is not None:
                self.store.delete(marker)  # a taker that died while taking over
            return False
        try:
            _, current = read(self.store, self.directory)
            if current != stale:
                return False  # someone else replaced it meanwhile
            self.store.write_bytes(self.name, mine)
            return True
        finally:
            self.store.delete(marker)

    def _start(self) -> None:
        self._held = True
        _HELD.add(self.owner)
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.sweep}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_s):
            try:
                self.renew()
            except (errors.GhostbenchError, OSError) as e:  # a store outage: keep trying until it would expire
                if self.clock() > self._expires:
                    self._lost = f"could not renew the lease before it expired ({e})"
                else:
                    log.warning("sweep %s: could not renew the lease (%s); retrying", self.sweep, e)
            if self._lost:
                return

    def renew(self) -> None:
        """Extend the lease, after checking that it is still this process's."""
        holder, _ = read(self.store, self.directory)
        if holder is None or holder.owner != self.owner:
            self._lost = ("the lease was deleted" if holder is None else
                          f"another controller took it over ({holder.describe()})")
            return
        self.store.write_bytes(self.name, self._doc())

    def check(self) -> None:
        """Raise ``LeaseLost`` when another controller took the lease over."""
        if self._lost:
            raise LeaseLost(f"sweep {self.sweep}: stopped: {self._lost}")

    @property
    def lost(self) -> bool:
        return self._lost is not None

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still this process's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self._held:
            return
        self._held = False
        _HELD.discard(self.owner)
        try:
            holder, _ = read(self.store, self.directory)
            if holder is not None and holder.owner == self.owner:
                self.store.delete(self.name)
        except errors.GhostbenchError as e:  # it expires by itself
            log.warning("sweep %s: could not remove the lease (%s); it expires by itself", self.sweep, e)


def holder_gone(store: store_mod.Store, directory: str) -> str | None:
    """For ``ghostbench status``: why the controller of a sweep whose status says running is gone (no lease,
    its pid is not running here, or the lease expired), or None when it may be running."""
    holder, _ = read(store, directory)
    if holder is None:
        return "no controller holds its lease"
    why = holder.gone()
    return None if why is None else f"its controller is gone ({holder.describe()}: {why})"
