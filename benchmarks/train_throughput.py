"""Training throughput, padded against length-bucketed batches, side by side in one run.

Trains the configuration of ``goto-classifier train`` (GRU 150/200, weighted focal loss, batch 128,
validation loss and AUC and a checkpoint after every epoch) on the same data with
``batching="padded"`` (every batch 30 steps: the trainer before bucketing) and
``batching="bucketed"`` (``trainer.batching``), alternating the two (padded, bucketed, padded,
bucketed, ...) so that both see the same drift of this shared VM's speed. Each run starts from the
same seed and trains ``--epochs`` epochs; the first epoch (graph tracing) is reported apart.

Writes ``benchmarks/results/train_throughput.json``: seconds per steady epoch for each mode and run,
their medians, the ratio padded / bucketed, the RNN steps each mode computes per epoch, training
objects per second, CPU steal during the run, and the wall time extrapolated to 200 epochs.

Usage::

    python benchmarks/train_throughput.py --data data/sim           # the default sky
    python benchmarks/train_throughput.py --n-objects 20000         # simulate a sky first
    python benchmarks/train_throughput.py --data DIR --epochs 3 --rounds 2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "train_throughput.json"
DEFAULT_DATA = REPO / "data" / "sim"
PAPER_EPOCHS = 200
MODES = ("padded", "bucketed")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_times() -> tuple[float, float]:
    """(total, steal) jiffies of all CPUs, from /proc/stat (steal: time the hypervisor took)."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    return sum(fields), fields[7] if len(fields) > 7 else 0.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help=f"survey tables (default: {DEFAULT_DATA} if present)")
    p.add_argument("--n-objects", type=int, default=20_000, help="objects to simulate when no data is found")
    p.add_argument("--threads", type=int, default=2, help="TensorFlow intra- and inter-op threads")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (the first includes tracing)")
    p.add_argument("--rounds", type=int, default=2, help="alternations of the two modes")
    p.add_argument("--rnn", choices=["gru", "lstm"], default="gru")
    p.add_argument("--rnn-units", type=int, default=150)
    p.add_argument("--dense-units", type=int, default=200)
    p.add_argument("--out", default=str(DEFAULT_OUT))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import numpy as np

    from lightcurve.cli import main as cli_main
    from trainer.batching import bucketed_batches, padded_batches
    from trainer.data import CLASS_NAMES, load_tables
    from trainer.dataset import DataOptions, prepare_training_data
    from trainer.model import ModelConfig
    from trainer.training import TrainConfig, train_model

    load_before = os.getloadavg()
    cpu_before = _cpu_times()
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="goto-bench-") as tmp:
        data_dir = Path(args.data) if args.data else (DEFAULT_DATA if DEFAULT_DATA.is_dir() else None)
        simulated_here = data_dir is None
        if data_dir is None:
            data_dir = Path(tmp) / "sim"
            print(f"no data found: simulating {args.n_objects} objects into {data_dir}", file=sys.stderr)
            rc = cli_main(["simulate", "--out", str(data_dir), "--n-objects", str(args.n_objects)])
            if rc:
                return rc
        tables = load_tables(data_dir)
        t0 = time.perf_counter()
        data = prepare_training_data(tables, DataOptions(), CLASS_NAMES)
        t_inputs = time.perf_counter() - t0
        train = data.part("train")
        n_train, n_val, n_test = (len(data.split.indices(s)) for s in ("train", "validation", "test"))

        for round_ in range(args.rounds):
            for mode in MODES:
                config = TrainConfig(
                    model=ModelConfig(
                        rnn_type=args.rnn, rnn_units=args.rnn_units, dense_units=args.dense_units
                    ),
                    epochs=args.epochs,
                    batching=mode,
                )
                work = Path(tmp) / f"work-{mode}-{round_}"
                print(f"round {round_ + 1}/{args.rounds}: {mode}", file=sys.stderr)
                outcome = train_model(config, data, work, log=lambda m: print(m, file=sys.stderr))
                seconds = [row["seconds"] for row in outcome.history]
                runs.append(
                    {
                        "round": round_ + 1,
                        "batching": mode,
                        "epoch_seconds": [round(s, 2) for s in seconds],
                        "steady_epoch_s": round(float(np.median(seconds[1:] or seconds)), 2),
                        "final_loss": round(outcome.history[-1]["loss"], 5),
                        "final_val_auc": round(outcome.history[-1]["val_auc"], 5),
                    }
                )

    total, steal = (a - b for a, b in zip(_cpu_times(), cpu_before, strict=True))
    steady = {m: float(np.median([r["steady_epoch_s"] for r in runs if r["batching"] == m])) for m in MODES}
    steps = {
        "padded": padded_batches(n_train, 128, data.sequence_spec.n_steps, 42, 0).computed_steps,
        "bucketed": bucketed_batches(train.n_valid, 128, 42, 0).computed_steps,
    }
    result = {
        "benchmark": "train_throughput",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python benchmarks/train_throughput.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
        },
        "threads": args.threads,
        # Other processes slow the run down: a load above the core count means contention; steal is
        # CPU time the hypervisor gave to other guests. Both modes share them (they alternate).
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "cpu_steal_fraction": round(steal / total, 4) if total else None,
        "model": {
            "rnn": args.rnn,
            "rnn_units": args.rnn_units,
            "dense_units": args.dense_units,
            "loss": "focal",
            "batch_size": 128,
        },
        "data": {
            "dir": str(data_dir) if not simulated_here else f"simulated {args.n_objects} objects (temporary)",
            "n_objects": len(data.inputs),
            "n_train": n_train,
            "n_validation": n_val,
            "n_test": n_test,
            "n_detections": len(tables.detections),
            "median_steps_train": float(np.median(train.n_valid)),
            "mean_steps_train": round(float(np.mean(train.n_valid)), 2),
        },
        "build_inputs_s": round(t_inputs, 2),
        "epoch_includes": "fit over the training split + validation loss + validation AUC + checkpoint save",
        "runs": runs,
        "steady_epoch_s": steady,
        "speedup_padded_over_bucketed": round(steady["padded"] / steady["bucketed"], 2),
        "rnn_steps_per_epoch": steps,
        "train_objects_per_s": {m: round(n_train / s, 1) for m, s in steady.items()},
        "train_200_epochs_h": {m: round(PAPER_EPOCHS * s / 3600, 2) for m, s in steady.items()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("steady_epoch_s", "speedup_padded_over_bucketed")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
