"""The `graphc` command."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    accuracy = run_demo(sys.stdout, epochs=args.epochs, backend=args.backend, model=args.model)
    return 0 if accuracy > 0.9 else 1


def _ops(args: argparse.Namespace) -> int:
    from .ops import all_ops

    for name, op in sorted(all_ops().items()):
        doc = (op.__doc__ or "").strip().splitlines()
        print(f"{name:38s} {doc[0] if doc else ''}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="graphc", description="A symbolic graph compiler for Python.")
    parser.add_argument("--version", action="version", version=f"graphc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build, differentiate, compile and train a digits classifier")
    demo.add_argument("--epochs", type=int, default=20)
    demo.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    demo.add_argument("--backend", default=None, help="numpy (reference); compiled backends as they land")
    demo.set_defaults(fn=_demo)
    ops = sub.add_parser("ops", help="list every op graphc defines")
    ops.set_defaults(fn=_ops)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
