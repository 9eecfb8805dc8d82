"""Command line: `workbench trial | tune | worker | status | best | report | export | crosscheck | grid |
validate | engines | doctor | dashboard | ui | lab | import | make-tiny-model | make-shape-tokenizer`.

Only the standard library is imported at start, so `workbench --help` answers at once; each command's
handler module (`trial`, `tune`, `inspect`, `ui`, `tools`) is imported when the command runs.

Exit codes: 0 done (a trial COMPLETE), 1 failed (a trial FAILED, an interrupted run), 2 bad input (every
`workbench.types.InputError`: one message on stderr), 3 infeasible (a trial INFEASIBLE).
"""

from __future__ import annotations

import importlib
import sys

from workbench.cli.common import EXIT_FAILED, EXIT_INFEASIBLE, EXIT_OK, EXIT_USAGE, UsageError
from workbench.cli.parser import HANDLERS, build_parser

__all__ = ["main", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INFEASIBLE", "UsageError"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    module, function = HANDLERS[args.command].split(":")
    handler = getattr(importlib.import_module(f"workbench.cli.{module}"), function)
    from workbench.types import InputError, WorkbenchError

    try:
        return handler(args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except WorkbenchError as e:  # a store or environment the workbench will not repair: say so, no traceback
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
