"""The ``goto-classifier`` console script.

Only argparse lives here so that ``--help`` is instant: each subcommand names the function that runs
it as a ``"module:function"`` string, imported only when that subcommand runs. This keeps the pure
core free of trainer and service imports (neither is imported unless its command is chosen).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

__all__ = ["build_parser", "main"]


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="write a GOTO-like simulated sky (detections, objects, galaxies)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--n-objects", type=int, default=None,
                   help="total objects (default: the paper's 99,201, class fractions kept)")
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.set_defaults(handler="trainer.simulator:simulate_command")


def _add_training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="directory with detections/objects/galaxies tables")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--epochs", type=int, default=None, help="default 200 (paper); --fast: 2")
    p.add_argument("--fast", action="store_true", help="tiny run for tests and smoke checks")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one model and export a model directory")
    _add_training_args(p)
    p.add_argument("--out", required=True, help="model directory to write (atomically)")
    p.add_argument("--rnn", choices=["gru", "lstm"], default="gru")
    p.add_argument("--loss", choices=["ce", "wce", "focal"], default="focal")
    p.add_argument("--gamma", type=float, default=2.0)
    p.add_argument("--rnn-units", type=int, default=150)
    p.add_argument("--dense-units", type=int, default=200)
    p.add_argument("--no-context", action="store_true", help="time series only (paper's GRU NC)")
    p.add_argument("--model-version", default=None, help="version stamped on every prediction")
    p.set_defaults(handler="trainer.commands:train")


def _add_grid(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grid", help="paper Table 1 grid, resumable; writes a Table 2 analogue")
    _add_training_args(p)
    p.add_argument("--out", required=True, help="runs directory (one sub-directory per configuration)")
    p.add_argument("--only", default=None, help="comma-separated subset, e.g. 'gru-focal,gru-focal-nc'")
    p.set_defaults(handler="trainer.commands:grid")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model directory on a data set's test split")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", default=None, help="report directory (default: MODEL/report)")
    p.set_defaults(handler="trainer.commands:evaluate")


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the HTTP service (embedded Redis unless GOTO_REDIS_URL is set)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(handler="service.commands:serve")


def _add_replay(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="stream a detections table into a running service in time order")
    p.add_argument("file", help="detections table (CSV or Parquet); objects table found beside it")
    p.add_argument("--objects", default=None, help="objects table with ra/dec (default: beside FILE)")
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--rate", type=float, default=0.0, help="detections per second (0: as fast as possible)")
    p.add_argument("--api-key", default=None, help="bearer key when the service sets GOTO_API_KEYS "
                   "(default: $GOTO_API_KEY)")
    p.set_defaults(handler="service.replay:replay_command")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="goto-classifier",
        description="Real-time VS/SN/AGN light-curve classifier (Burhanudin et al. 2021).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_simulate, _add_train, _add_grid, _add_evaluate, _add_serve, _add_replay):
        add(sub)
    return parser


def _resolve(handler: str) -> Callable[[argparse.Namespace], int | None]:
    module_name, func_name = handler.split(":")
    return getattr(importlib.import_module(module_name), func_name)  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = _resolve(args.handler)(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
