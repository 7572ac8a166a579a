"""The ``ghostbench`` command.

``ghostbench stage NAME ARGS...`` runs one pipeline stage exactly as a pod would
(``python -m jobs.NAME ARGS...``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

import jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ghostbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ghostbench {jobs.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("stage", help="run one pipeline stage (as a pod would)", add_help=False)
    st.add_argument("name", choices=jobs.STAGES)
    st.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "stage":
        module = importlib.import_module(f"jobs.{args.name}")
        return module.main(args.args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
