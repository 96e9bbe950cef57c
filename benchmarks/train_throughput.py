"""Training throughput of the paper-size model on this machine (objects per second per epoch).

Trains the configuration of ``goto-classifier train`` (GRU 150/200, weighted focal loss, batch 128,
validation AUC and a checkpoint after every epoch) for a few epochs with a fixed number of
TensorFlow threads, and writes ``benchmarks/results/train_throughput.json``: seconds per epoch
(the first epoch, which includes graph tracing, is reported separately), training objects per second,
inference objects per second, and the wall time extrapolated to the full default simulation
(99,201 objects) for 200 epochs.

Usage::

    python benchmarks/train_throughput.py                       # data/sim if present, else simulates
    python benchmarks/train_throughput.py --data DIR --threads 2 --epochs 3
    python benchmarks/train_throughput.py --n-objects 20000     # simulate a subset and extrapolate
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
#: The paper's data set size (the simulator's default).
FULL_N_OBJECTS = 99_201
PAPER_EPOCHS = 200


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help=f"survey tables (default: {DEFAULT_DATA} if present)")
    p.add_argument("--n-objects", type=int, default=20_000, help="objects to simulate when no data is found")
    p.add_argument("--threads", type=int, default=2, help="TensorFlow intra- and inter-op threads")
    p.add_argument("--epochs", type=int, default=3, help="epochs to time (the first includes tracing)")
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
    from trainer.data import CLASS_NAMES, load_tables
    from trainer.dataset import DataOptions, prepare_training_data
    from trainer.evaluation import predict_proba
    from trainer.model import ModelConfig
    from trainer.training import TrainConfig, train_model

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="goto-bench-") as tmp:
        data_dir = Path(args.data) if args.data else (DEFAULT_DATA if DEFAULT_DATA.is_dir() else None)
        simulated_here = data_dir is None
        if data_dir is None:
            data_dir = Path(tmp) / "sim"
            print(f"no data found: simulating {args.n_objects} objects into {data_dir}", file=sys.stderr)
            rc = cli_main(["simulate", "--out", str(data_dir), "--n-objects", str(args.n_objects)])
            if rc:
                return rc

        t0 = time.perf_counter()
        tables = load_tables(data_dir)
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        data = prepare_training_data(tables, DataOptions(), CLASS_NAMES)
        t_inputs = time.perf_counter() - t0
        n_objects = len(data.inputs)
        n_train, n_val, n_test = (len(data.split.indices(s)) for s in ("train", "validation", "test"))

        config = TrainConfig(
            model=ModelConfig(rnn_type=args.rnn, rnn_units=args.rnn_units, dense_units=args.dense_units),
            epochs=args.epochs,
        )
        outcome = train_model(config, data, Path(tmp) / "work", log=lambda m: print(m, file=sys.stderr))
        epoch_s = [row["seconds"] for row in outcome.history]
        steady = float(np.median(epoch_s[1:])) if len(epoch_s) > 1 else float(epoch_s[0])

        test = data.part("test")
        predict_proba(outcome.model, test.subset(np.arange(min(len(test), 256))), True)  # warm-up
        t0 = time.perf_counter()
        predict_proba(outcome.model, test, True)
        t_predict = time.perf_counter() - t0

    scale = FULL_N_OBJECTS / n_objects
    full_epoch = steady * scale
    # Evaluation predicts the test set 32 times (all observations, validation, and 1..30 observations).
    full_eval = 32 * t_predict * scale
    result = {
        "benchmark": "train_throughput",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
        },
        "threads": args.threads,
        # Other processes on the machine slow the run down: a load above the core count means contention.
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "model": {
            "rnn": args.rnn,
            "rnn_units": args.rnn_units,
            "dense_units": args.dense_units,
            "loss": config.loss,
            "batch_size": config.batch_size,
        },
        "data": {
            "dir": str(data_dir) if not simulated_here else f"simulated {args.n_objects} objects (temporary)",
            "n_objects": n_objects,
            "n_train": n_train,
            "n_validation": n_val,
            "n_test": n_test,
            "n_detections": len(tables.detections),
        },
        "load_tables_s": round(t_load, 2),
        "build_inputs_s": round(t_inputs, 2),
        "build_inputs_objects_per_s": round(n_objects / t_inputs, 1),
        "epoch_seconds": [round(s, 2) for s in epoch_s],
        "epoch_seconds_steady": round(steady, 2),
        "epoch_includes": "fit over the training split + validation loss + validation AUC + checkpoint save",
        "train_objects_per_s": round(n_train / steady, 1),
        "predict_test_s": round(t_predict, 2),
        "predict_objects_per_s": round(n_test / t_predict, 1),
        "extrapolated_full_simulation": {
            "n_objects": FULL_N_OBJECTS,
            "scale": round(scale, 3),
            "epoch_s": round(full_epoch, 1),
            "train_200_epochs_h": round(PAPER_EPOCHS * full_epoch / 3600, 2),
            "evaluate_s": round(full_eval, 0),
            "note": "linear in objects: every light curve is padded to 30 steps, so cost per object is fixed",
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
