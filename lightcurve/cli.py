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


def _add_adapter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("survey adapter (lightcurve.adapters; recorded in the output)")
    g.add_argument("--bands", default=None,
                   help="comma-separated filters to keep, merged in time order (e.g. ztf_r or ztf_g,ztf_r)")
    g.add_argument("--start-column", default=None,
                   help="objects-table column with an MJD; earlier detections are dropped (e.g. disc_mjd)")
    g.add_argument("--start-offset-days", type=float, default=0.0,
                   help="added to --start-column (e.g. -30 keeps a month before discovery)")
    g.add_argument("--bin", choices=["none", "visit", "night"], default="none",
                   help="combine the detections of one visit (< 1.5 h apart) or one night (< 0.5 d)")


def _add_training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="directory with detections/objects/galaxies tables")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--epochs", type=int, default=None, help="default 200 (paper); --fast: 2")
    p.add_argument("--fast", action="store_true", help="tiny run for tests and smoke checks")
    p.add_argument("--no-normalise", action="store_true",
                   help="feed raw inputs (default: z-score fitted on the training split, in metadata)")
    p.add_argument("--dummy-host-sep", type=float, default=100.0,
                   help="host distance (arcsec) used beyond 60\" or without a match (default 100)")
    p.add_argument("--tsne-points", type=int, default=None,
                   help="t-SNE subsample (default 2000; --fast: 200)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra/inter-op threads")
    p.add_argument("--batching", choices=["bucketed", "padded"], default="bucketed",
                   help="batches of similar length cut to their longest light curve (default; same "
                   "math) or random batches of 30 padded steps")
    p.add_argument("--early-stop-patience", type=int, default=0,
                   help="stop after this many epochs without a validation-AUC gain (default 0: never, "
                   "as the paper)")
    p.add_argument("--early-stop-min-delta", type=float, default=0.0,
                   help="smallest validation-AUC gain that counts as one (default 0)")
    p.add_argument("--prefix-fraction", type=float, default=0.0,
                   help="each epoch, cut this share of training objects to a random early prefix of "
                   "1..n detections (default 0: whole light curves, as the paper)")
    _add_adapter_args(p)
    _add_mix_args(p)


def _add_mix_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("beyond the simulated sky (trainer.mixed; off by default, recorded in metadata)")
    g.add_argument("--real-sets", default=None,
                   help="comma-separated real labelled sets to train on as well (mantra_crts, ztf_bts, "
                   "real_goto_examples); a seeded per-class test part of each is kept out")
    g.add_argument("--real-data-root", default=None,
                   help="folder holding the real sets (default: ../shared/data beside the repository)")
    g.add_argument("--real-copies", default=None,
                   help="extra augmented copies of each real training object (they are ~1 %% of the sky): "
                   "N for every set, or SET=N,... (e.g. mantra_crts=40,ztf_bts=5)")
    g.add_argument("--augment-copies", type=int, default=0,
                   help="augmented copies of every training object (thinning, early prefixes, zero-point "
                   "shifts, error rescaling; trainer.augment)")
    g.add_argument("--host-unknown-fraction", type=float, default=0.0,
                   help="share of training objects given the 'no match' host distance (host unknown)")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one model and export a model directory")
    _add_training_args(p)
    p.add_argument("--out", required=True, help="model directory to write (atomically)")
    p.add_argument("--rnn", choices=["gru", "lstm"], default="gru")
    p.add_argument("--loss", choices=["ce", "wce", "focal"], default="focal")
    p.add_argument("--gamma", type=float, default=2.0)
    p.add_argument("--rnn-units", type=int, default=None, help="default 150 (--fast: 16)")
    p.add_argument("--dense-units", type=int, default=None, help="default 200 (--fast: 16)")
    p.add_argument("--no-context", action="store_true", help="time series only (paper's GRU NC)")
    p.add_argument("--model-version", default=None, help="version stamped on every prediction")
    p.add_argument("--export-weights", choices=["final", "best_val_auc"], default="final",
                   help="final epoch (paper) or best validation-AUC epoch")
    p.add_argument("--work-dir", default=None,
                   help="checkpoints for resuming (default: .OUT.training beside OUT)")
    p.add_argument("--restart", action="store_true",
                   help="discard the checkpoints in the work dir and start over")
    p.add_argument("--compare", nargs="+", default=None, metavar="DIR",
                   help="model or grid runs directories to compare with (same data and seed)")
    p.add_argument("--calibration", choices=["none", "temperature", "vector"], default="none",
                   help="post-hoc calibration fitted on the validation split, stored in metadata and "
                   "applied by evaluate and the service (default none: the raw softmax, as the paper)")
    p.set_defaults(handler="trainer.commands:train")


def _add_grid(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grid", help="paper Table 1 grid, resumable; writes a Table 2 analogue")
    _add_training_args(p)
    p.add_argument("--out", required=True, help="runs directory (one sub-directory per configuration)")
    p.add_argument("--only", default=None, help="comma-separated subset, e.g. 'gru-focal,gru-focal-nc'")
    p.add_argument("--reduced", action="store_true",
                   help="one run per family with the paper's Table 2 hyper-parameters (7 runs instead of 40)")
    p.set_defaults(handler="trainer.commands:grid")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model directory on a data set's test split")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", default=None,
                   help="report directory (default: update MODEL/metrics.json and MODEL/report in place)")
    p.add_argument("--split", choices=["test", "all"], default="test",
                   help="the model's stored test split (default) or every object (foreign data)")
    p.add_argument("--compare", nargs="+", default=None, metavar="DIR",
                   help="model or grid runs directories to compare with (same data and seed)")
    p.add_argument("--tsne-points", type=int, default=None, help="t-SNE subsample (default 2000)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra/inter-op threads")
    _add_adapter_args(p)
    p.set_defaults(handler="trainer.commands:evaluate")


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit a calibration of a model directory on its validation split")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True,
                   help="the model's training data (its split.json names the objects)")
    p.add_argument("--method", choices=["temperature", "vector", "none"], default="temperature",
                   help="temperature scaling (one parameter, argmax unchanged; default), vector scaling "
                   "(scale and bias per class), or none (remove a calibration)")
    p.add_argument("--tsne-points", type=int, default=None, help="t-SNE subsample of the re-evaluation")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra/inter-op threads")
    p.set_defaults(handler="trainer.commands:calibrate")


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the HTTP service (embedded Redis unless GOTO_REDIS_URL is set)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(handler="service.commands:serve")


def _add_consume(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("consume", help="classify detections from a Redis stream (consumer group; runs until "
                       "SIGTERM); results to a results stream")
    p.add_argument("--stream", default=None, help="ingest stream (default: GOTO_INGEST_STREAM, goto:ingest)")
    p.add_argument("--results-stream", default=None,
                   help="results stream (default: GOTO_RESULTS_STREAM, goto:results)")
    p.add_argument("--dead-letter-stream", default=None,
                   help="stream of entries that could not be classified (default: GOTO_DEAD_LETTER_STREAM, "
                   "goto:ingest:dead)")
    p.add_argument("--group", default=None, help="consumer group (default: GOTO_CONSUMER_GROUP)")
    p.add_argument("--consumer", default=None,
                   help="this consumer's name in the group (default: GOTO_CONSUMER_NAME, else host-pid)")
    p.add_argument("--batch", type=int, default=None, help="entries per read (default: GOTO_CONSUME_BATCH)")
    p.set_defaults(handler="service.consume:consume_command")


def _add_replay(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="stream a detections table into a running service in time order")
    p.add_argument("file", help="detections table (CSV or Parquet); objects table found beside it")
    p.add_argument("--objects", default=None, help="objects table with ra/dec (default: beside FILE)")
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--rate", type=float, default=0.0, help="detections per second (0: as fast as possible)")
    p.add_argument("--api-key", default=None, help="bearer key when the service sets GOTO_API_KEYS "
                   "(default: $GOTO_API_KEY)")
    p.set_defaults(handler="service.replay:replay_command")


def _add_webhook_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis-url", default=None, help="Redis server (default: GOTO_REDIS_URL)")
    p.add_argument("--webhooks", default=None, help="subscriptions file (default: GOTO_WEBHOOKS)")


def _add_dispatch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dispatch", help="deliver webhook events from the Redis outbox (runs until SIGTERM)")
    _add_webhook_source_args(p)
    p.add_argument("--max-in-flight", type=int, default=16, help="concurrent deliveries per subscription")
    p.add_argument("--claim-idle-s", type=float, default=30.0,
                   help="take over events a dead dispatcher left pending after this many seconds")
    p.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port")
    p.add_argument("--metrics-host", default="127.0.0.1")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler="service.webhooks.commands:dispatch")


def _add_webhooks(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("webhooks", help="inspect and replay webhook dead letters")
    actions = p.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    listing = actions.add_parser("dead-letters", help="list events that were not delivered, with the reason")
    _add_webhook_source_args(listing)
    listing.add_argument("--subscription", action="append", default=None,
                         help="subscription id (repeatable; default: all)")
    listing.add_argument("--limit", type=int, default=None, help="at most this many per subscription")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler="service.webhooks.commands:dead_letters")
    replay = actions.add_parser("replay-dead-letters", help="send dead-lettered events again")
    _add_webhook_source_args(replay)
    replay.add_argument("--subscription", action="append", default=None,
                        help="subscription id (repeatable; default: all)")
    replay.add_argument("--id", action="append", default=None,
                        help="dead-letter entry id or event id (repeatable)")
    replay.add_argument("--all", action="store_true", help="replay every dead letter")
    replay.set_defaults(handler="service.webhooks.commands:replay_dead_letters")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="goto-classifier",
        description="Real-time VS/SN/AGN light-curve classifier (Burhanudin et al. 2021).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_simulate, _add_train, _add_grid, _add_evaluate, _add_calibrate, _add_serve, _add_consume,
                _add_replay, _add_dispatch, _add_webhooks):
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
