"""What every stage command shares: parsing its typed parameters, logging, exit codes, skip-if-committed."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Sequence

from jobs import commit, errors, params
from jobs import store as store_mod

log = logging.getLogger("ghostbench")


def setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def main(params_cls: type[params.P], run: Callable[[params.P, store_mod.Store], None],
         argv: Sequence[str] | None = None,
         locate: Callable[[params.P, store_mod.Store], store_mod.Store] | None = None) -> int:
    """Parse the stage's parameters, skip if already committed, run, and map failures to exit codes.

    ``run(p, out)`` builds the output (usually inside ``commit.Output``). ``locate`` maps ``--out``
    to where the output is committed, when that is below it (a preprocessing shard). Exit codes:
    0 done (or nothing to do), 2 bad input, 3 a missing library, 1 anything else, 130 interrupted.
    """
    stage = params_cls.stage
    args = params_cls.build_parser().parse_args(None if argv is None else list(argv))
    setup_logging(args.quiet)
    try:
        p = params_cls.from_args(args)
        out = store_mod.open_store(p.out)
        target = locate(p, out) if locate else out
        if not args.force and commit.read_manifest(target) is not None:
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
