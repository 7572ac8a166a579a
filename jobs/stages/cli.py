"""What every stage command shares: parsing its typed parameters, logging, exit codes, skip-if-committed."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import sys
import traceback
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jobs import errors, params
from jobs import store as store_mod
from jobs.artifacts import commit
from jobs.harness import lifetime

log = logging.getLogger("ghostbench")

def die_with_controller(environ: Mapping[str, str] = os.environ) -> None:
    """When a controller started this process (``params.CONTROLLER_PID_ENV``), have the kernel send it SIGTERM when
    the controller dies, and end it now if the controller is gone already (``jobs.harness.lifetime``). Without the
    variable, nothing."""
    raw = environ.get(params.CONTROLLER_PID_ENV, "")
    if raw.isdigit():
        lifetime.die_with(int(raw))


def setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def _location(value: Any) -> Any:
    """A location in one form, so that ``store/x``, ``./store/x/`` and ``file:///abs/store/x`` compare equal
    (a relative path is taken from the current directory)."""
    if isinstance(value, (list, tuple)):
        return [_location(v) for v in value]
    if not isinstance(value, str) or not value:
        return value
    parsed = urllib.parse.urlparse(value)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        path = urllib.parse.unquote(parsed.path)
    elif not parsed.scheme or len(parsed.scheme) == 1:
        path = value
    else:
        return value.rstrip("/")
    return pathlib.Path(path).expanduser().resolve().as_uri()


def _shown(value: Any) -> str:
    """A parameter's value as a user writes it: options as KEY=VALUE, nothing as (none)."""
    if value is None or value == {} or value == ():
        return "(none)"
    if isinstance(value, dict):
        return " ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sorted(value.items()))
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return repr(value)


def changed_params(p: params.StageParams, given: dict[str, Any], manifest: dict[str, Any]
                   ) -> list[tuple[str, Any, Any]]:
    """``(flag, committed value, given value)`` for each parameter that makes the output (the content key's
    fields and the upstream outputs; not ``--out`` or a location such as ``--weights``, whose checksum counts)
    on which the committed output's manifest and this call differ. ``given`` is the parameters in the form the
    stage records them (``record``), compared with the manifest's ``params`` restricted to the dataclass's
    fields; a field an older manifest lacks is taken at its default."""
    committed = manifest.get("params")
    if not isinstance(committed, dict):
        return []
    changed = []
    for f in dataclasses.fields(p):
        if not (f.metadata.get("key") or f.metadata.get("upstream")):
            continue
        if f.name in committed:
            old = committed[f.name]
        elif f.default is not dataclasses.MISSING:
            old = f.default
        else:
            continue
        new = given.get(f.name)
        if isinstance(old, tuple):
            old = list(old)
        if f.metadata.get("upstream") or f.metadata.get("metavar") == "URI":
            old, new = _location(old), _location(new)
        if old != new:
            changed.append((params.flag_of(f), old, new))
    return changed


def main(params_cls: type[params.P], run: Callable[[params.P, store_mod.Store], None],
         argv: Sequence[str] | None = None,
         locate: Callable[[params.P, store_mod.Store], store_mod.Store] | None = None,
         record: Callable[[params.P], dict[str, Any]] | None = None) -> int:
    """Parse the stage's parameters, skip if already committed, run, and map failures to exit codes.

    ``run(p, out)`` builds the output (usually inside ``commit.Output``). ``locate`` maps ``--out``
    to where the output is committed, when that is below it (a preprocessing shard). ``record(p)``: the
    parameters as the stage records them in its manifest (default ``p.to_dict()``); a committed output made
    with other parameters is refused (bad input naming each flag, its committed and its given value) unless
    ``--force``. Exit codes: 0 done (or nothing to do), 2 bad input, 3 a missing library, 1 anything else,
    130 interrupted.
    """
    stage = params_cls.stage
    die_with_controller()
    args = params_cls.build_parser().parse_args(None if argv is None else list(argv))
    setup_logging(args.quiet)
    try:
        p = params_cls.from_args(args)
        out = store_mod.open_store(p.out)
        target = locate(p, out) if locate else out
        manifest = None if args.force else commit.read_manifest(target)
        if manifest is not None:
            changed = changed_params(p, record(p) if record else p.to_dict(), manifest)
            if changed:
                what = "; ".join(f"{flag} committed {_shown(old)}, given {_shown(new)}" for flag, old, new in changed)
                raise errors.BadInput(f"{target.uri} holds an output committed with other parameters: {what}; "
                                      "rerun with --force to replace it, or choose another --out")
            log.info("%s: committed output exists at %s; nothing to do", stage, target.uri)
            return errors.EXIT_OK
        run(p, out)
        log.info("%s: committed %s", stage, target.uri)
        return errors.EXIT_OK
    except errors.GhostbenchError as e:
        log.debug("%s failed", stage, exc_info=True)  # the chained cause, for a debug log
        print(f"ghostbench {stage}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"ghostbench {stage}: interrupted; nothing committed", file=sys.stderr)
        return 130
    except Exception:  # an unexpected bug: keep the traceback for the log
        traceback.print_exc()
        print(f"ghostbench {stage}: failed unexpectedly; nothing committed", file=sys.stderr)
        return errors.EXIT_FAILURE
