"""What every stage command shares: argument parsing, logging, exit codes, the skip-if-committed rule."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from jobs import commit, errors
from jobs import store as store_mod

log = logging.getLogger("ghostbench")


def parser(stage: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m jobs.{stage}", description=description)
    p.add_argument("--out", required=True, metavar="URI",
                   help="store location for this stage's output (file:///dir, a path, or s3://bucket/prefix)")
    p.add_argument("--force", action="store_true",
                   help="rebuild even when a committed output already exists at --out")
    p.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    return p


def setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def main(stage: str, build_parser: Callable[[], argparse.ArgumentParser],
         run: Callable[[argparse.Namespace, store_mod.Store], None],
         argv: Sequence[str] | None = None,
         locate: Callable[[argparse.Namespace, store_mod.Store], store_mod.Store] | None = None) -> int:
    """Parse arguments, skip if already committed, run, and map failures to exit codes.

    ``run(args, out)`` builds the output (usually inside ``commit.Output``). ``locate`` maps
    ``--out`` to where the output is committed, when that is below it (a preprocessing shard).
    """
    args = build_parser().parse_args(argv)
    setup_logging(args.quiet)
    try:
        out = store_mod.open_store(args.out)
        target = locate(args, out) if locate else out
        if not args.force and commit.read_manifest(target) is not None:
            log.info("%s: committed output exists at %s; nothing to do", stage, target.uri)
            return errors.EXIT_OK
        run(args, out)
        log.info("%s: committed %s", stage, target.uri)
        return errors.EXIT_OK
    except errors.GhostbenchError as e:
        print(f"ghostbench {stage}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"ghostbench {stage}: interrupted; nothing committed", file=sys.stderr)
        return 130
    except Exception:  # an unexpected bug: keep the traceback for the log
        traceback.print_exc()
        print(f"ghostbench {stage}: failed unexpectedly; nothing committed", file=sys.stderr)
        return errors.EXIT_FAILURE


def parse_pairs(pairs: Sequence[str], flag: str, form: str = "KEY=VALUE") -> dict[str, str]:
    """``["a=1", "b=x"]`` from a repeatable flag -> ``{"a": "1", "b": "x"}``; a malformed pair is bad input."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise errors.BadInput(f"{flag} {pair!r}: expected {form}")
        out[key] = value
    return out


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``--option KEY=VALUE`` flags; values parse as JSON where they can (``2``, ``true``), else stay strings."""
    options: dict[str, Any] = {}
    for key, value in parse_pairs(pairs, "--option").items():
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options
