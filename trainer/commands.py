"""Handlers of ``goto-classifier train``, ``grid`` and ``evaluate`` (argparse lives in lightcurve.cli).

Each takes the parsed ``argparse.Namespace`` and returns an exit code. Heavy imports (TensorFlow,
scikit-learn, matplotlib) happen inside the handlers, so ``goto-classifier --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["evaluate", "grid", "train"]

#: ``--fast``: a tiny run for tests and smoke checks.
FAST_EPOCHS = 2
FAST_UNITS = 16
FAST_TSNE_POINTS = 200
PAPER_EPOCHS = 200


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _quiet_tensorflow(threads: int | None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _epochs(args: argparse.Namespace) -> int:
    if args.epochs is not None:
        return int(args.epochs)
    return FAST_EPOCHS if args.fast else PAPER_EPOCHS


def _tsne_points(args: argparse.Namespace) -> int:
    value = getattr(args, "tsne_points", None)
    if value is not None:
        return int(value)
    return FAST_TSNE_POINTS if getattr(args, "fast", False) else 2000


def adapter_from_args(args: argparse.Namespace) -> Any:
    """The survey adapter of ``--bands``, ``--start-column``, ``--start-offset-days`` and ``--bin``."""
    from lightcurve.adapters import SurveyAdapter

    bands = getattr(args, "bands", None)
    return SurveyAdapter(
        bands=tuple(b.strip() for b in bands.split(",") if b.strip()) if bands else None,
        start_column=getattr(args, "start_column", None),
        start_offset_days=getattr(args, "start_offset_days", 0.0) or 0.0,
        binning=getattr(args, "bin", "none") or "none",
    )


def _load(args: argparse.Namespace) -> Any:
    from trainer.adapt import adapt_tables
    from trainer.data import load_tables

    _say(f"loading {args.data}")
    adapter = adapter_from_args(args)
    tables = adapt_tables(load_tables(args.data), adapter)
    if not adapter.is_identity:
        _say(f"adapter: {adapter.describe()}")
    return tables


def _prepare(args: argparse.Namespace) -> Any:
    from trainer.data import CLASS_NAMES
    from trainer.dataset import DataOptions, prepare_training_data
    from trainer.mixed import with_training_extras

    options = DataOptions(
        seed=args.seed,
        normalise=not getattr(args, "no_normalise", False),
        dummy_host_sep_arcsec=getattr(args, "dummy_host_sep", 100.0),
    )
    tables = _load(args)
    _say(f"building inputs for {len(tables.objects)} objects ({len(tables.detections)} detections)")
    data = prepare_training_data(tables, options, CLASS_NAMES)
    return with_training_extras(data, tables, mix_options_from_args(args), seed=args.seed, log=_say)


def _real_copies(value: Any) -> dict[str, int]:
    """``--real-copies``: ``N`` for every set, or ``SET=N,...`` (``""`` keys the default)."""
    if value in (None, "", 0):
        return {}
    out: dict[str, int] = {}
    for item in str(value).split(","):
        name, _, n = item.strip().rpartition("=")
        try:
            out[name.strip()] = int(n)
        except ValueError:
            raise ValueError(f"--real-copies: {item!r} is not N or SET=N") from None
    return out


def mix_options_from_args(args: argparse.Namespace) -> Any:
    """The :class:`trainer.mixed.MixOptions` of ``--real-sets``, ``--augment-copies``, ... ."""
    from trainer.augment import AugmentOptions
    from trainer.mixed import MixOptions

    real_sets = getattr(args, "real_sets", None)
    copies = _real_copies(getattr(args, "real_copies", None))
    return MixOptions(
        real_sets=tuple(s.strip() for s in real_sets.split(",") if s.strip()) if real_sets else (),
        real_data_root=getattr(args, "real_data_root", None),
        real_copies=copies.get("", 0),
        real_copies_by_set=tuple((k, v) for k, v in copies.items() if k),
        augment=AugmentOptions(copies=getattr(args, "augment_copies", 0) or 0),
        host_unknown_fraction=getattr(args, "host_unknown_fraction", 0.0) or 0.0,
    )


def _load_compared(paths: list[str] | None) -> list[dict[str, Any]]:
    """Metrics of ``--compare`` entries: model directories, or grid runs directories (best per family)."""
    from trainer.grid import best_per_family

    out: list[dict[str, Any]] = []
    for raw in paths or []:
        path = Path(raw)
        if (path / "metrics.json").exists():
            out.append(json.loads((path / "metrics.json").read_text()))
        elif path.is_dir() and any(path.glob("*/model/metrics.json")):
            for model_dir in best_per_family(path).values():
                out.append(json.loads((model_dir / "metrics.json").read_text()))
        else:
            raise ValueError(
                f"--compare {raw}: neither a model directory (metrics.json) nor a grid runs directory"
            )
    return out


def _schedule(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "batching": getattr(args, "batching", "bucketed"),
        "early_stop_patience": getattr(args, "early_stop_patience", 0) or 0,
        "early_stop_min_delta": getattr(args, "early_stop_min_delta", 0.0) or 0.0,
        "prefix_fraction": getattr(args, "prefix_fraction", 0.0) or 0.0,
    }


def _model_config(args: argparse.Namespace) -> Any:
    from trainer.model import ModelConfig

    default = ModelConfig()
    rnn_units = args.rnn_units or (FAST_UNITS if args.fast else default.rnn_units)
    dense_units = args.dense_units or (FAST_UNITS if args.fast else default.dense_units)
    return ModelConfig(
        rnn_type=args.rnn, rnn_units=rnn_units, dense_units=dense_units, use_context=not args.no_context
    )


def train(args: argparse.Namespace) -> int:
    """Train one model, evaluate it on the test split and export a complete model directory."""
    try:
        _quiet_tensorflow(getattr(args, "threads", None))
        from trainer.runner import train_and_export
        from trainer.training import TrainConfig

        config = TrainConfig(
            model=_model_config(args),
            loss=args.loss,
            gamma=args.gamma,
            epochs=_epochs(args),
            seed=args.seed,
            export_weights=getattr(args, "export_weights", "final"),
            **_schedule(args),
        )
        compared = _load_compared(getattr(args, "compare", None))
        data = _prepare(args)
        metrics = train_and_export(
            config,
            data,
            args.out,
            work_dir=getattr(args, "work_dir", None),
            model_version=args.model_version,
            compare=compared,
            tsne_points=_tsne_points(args),
            restart=getattr(args, "restart", False),
            calibration_method=getattr(args, "calibration", "none"),
            log=_say,
        )
    except (ValueError, FileNotFoundError) as exc:
        _say(f"error: {exc}")
        return 2
    _say(
        f"done: {args.out}  test AUC {metrics['test']['auc']:.4f}  macro F1 {metrics['test']['f1_macro']:.4f}"
    )
    return 0


def grid(args: argparse.Namespace) -> int:
    """Run (or resume) the paper's Table 1 grid and write the Table 2 analogue and comparison report."""
    try:
        _quiet_tensorflow(getattr(args, "threads", None))
        from trainer.grid import paper_grid, run_grid, select_runs, summarise_grid
        from trainer.training import TrainConfig

        base = TrainConfig(epochs=_epochs(args), seed=args.seed, **_schedule(args))
        units = (FAST_UNITS, FAST_UNITS) if args.fast else None
        runs = select_runs(paper_grid(base, reduced=getattr(args, "reduced", False), units=units), args.only)
        _say(f"grid: {len(runs)} runs in {args.out}")
        data = _prepare(args)
        run_grid(data, args.out, runs, tsne_points=_tsne_points(args), log=_say)
        results = summarise_grid(args.out)
    except (ValueError, FileNotFoundError) as exc:
        _say(f"error: {exc}")
        return 2
    _say(f"done: {Path(args.out) / 'results.md'} ({len(results['runs'])} runs)")
    return 0


def calibrate(args: argparse.Namespace) -> int:
    """Fit (or remove) the calibration of a model directory on its validation split, then
    re-evaluate the directory in place so that its metrics and report are of the calibrated model."""
    try:
        _quiet_tensorflow(getattr(args, "threads", None))
        import keras

        from lightcurve.metadata import load_metadata
        from trainer.calibration import calibrate_on_validation
        from trainer.dataset import prepare_for_artifact
        from trainer.export import MODEL_FILE, SPLIT_FILE, departures_from_paper, json_safe

        model_dir = Path(args.model)
        metadata = load_metadata(model_dir)
        split_path = model_dir / SPLIT_FILE
        if not split_path.exists():
            raise ValueError(f"{split_path}: missing; calibration needs the model's validation split")
        model = keras.models.load_model(model_dir / MODEL_FILE, compile=False)
        data = prepare_for_artifact(
            _load(args), metadata.sequence, metadata.context, metadata.class_names,
            json.loads(split_path.read_text()),
        )
        calibration = calibrate_on_validation(model, data, metadata.context.enabled, args.method)
        training = {**metadata.training, "calibration": args.method}
        training["departures_from_paper"] = departures_from_paper(
            training, metadata.sequence.normalisation is not None, metadata.context.model_dump()
        )
        updated = metadata.model_copy(update={"calibration": calibration, "training": json_safe(training)})
        tmp = model_dir / "metadata.json.tmp"
        tmp.write_text(updated.to_json())
        os.replace(tmp, model_dir / "metadata.json")
        if calibration is not None:
            _say(
                f"{args.method} calibration on {calibration.n_objects} validation objects: log-loss "
                f"{calibration.log_loss_before:.4f} -> {calibration.log_loss_after:.4f}"
                + (f" (T = {calibration.temperature:.4f})" if calibration.method == "temperature" else "")
            )
        else:
            _say("calibration removed")
    except (ValueError, FileNotFoundError) as exc:
        _say(f"error: {exc}")
        return 2
    # the directory's metrics.json and report, of the calibrated model
    return evaluate(argparse.Namespace(**{**vars(args), "out": None, "split": "test", "compare": None}))


def evaluate(args: argparse.Namespace) -> int:
    """Re-evaluate a model directory on a data set (the stored test split, or every object)."""
    try:
        _quiet_tensorflow(getattr(args, "threads", None))
        import keras

        from lightcurve.metadata import load_metadata
        from trainer.dataset import prepare_for_artifact
        from trainer.evaluation import evaluate_model
        from trainer.export import MODEL_FILE, SPLIT_FILE, atomic_directory, write_json
        from trainer.report import write_report
        from trainer.runner import attach_comparison
        from trainer.training import read_history

        model_dir = Path(args.model)
        metadata = load_metadata(model_dir)
        model = keras.models.load_model(model_dir / MODEL_FILE, compile=False)
        split_mode = getattr(args, "split", "test")
        foreign = split_mode == "all" or not adapter_from_args(args).is_identity
        if foreign and args.out is None:
            raise ValueError(
                "--split all or an adapter scores other data than the model's test split: give --out "
                "REPORT_DIR (the model directory's own metrics.json and report stay those of its test split)"
            )
        split_record = None
        if split_mode == "test":
            split_path = model_dir / SPLIT_FILE
            if not split_path.exists():
                raise ValueError(f"{split_path}: missing; evaluate with --split all to score every object")
            split_record = json.loads(split_path.read_text())
        compared = _load_compared(getattr(args, "compare", None))
        tables = _load(args)
        data = prepare_for_artifact(
            tables, metadata.sequence, metadata.context, metadata.class_names, split_record
        )
        old_metrics_path = model_dir / "metrics.json"
        describe = (
            json.loads(old_metrics_path.read_text())["model"]
            if old_metrics_path.exists()
            else {
                "model_version": metadata.model_version,
                "rnn_type": metadata.rnn_type,
                "loss": metadata.training.get("loss"),
                "gamma": metadata.training.get("gamma"),
                "rnn_units": metadata.training.get("model", {}).get("rnn_units"),
                "dense_units": metadata.training.get("model", {}).get("dense_units"),
                "use_context": metadata.context.enabled,
            }
        )
        history = read_history(model_dir / "training_log.csv") or None
        metrics = evaluate_model(
            model,
            calibration=metadata.calibration,
            test=data.part("test"),
            validation=data.part("validation") if split_mode == "test" else None,
            class_names=metadata.class_names,
            use_context=metadata.context.enabled,
            thresholds=metadata.thresholds,
            describe=describe,
            history=history,
            tsne_points=_tsne_points(args),
            seed=int(metadata.training.get("seed", 0)),
            log=_say,
        )
        metrics["split"] = data.split_record() if split_mode == "test" else {"mode": "all objects"}
        metrics["evaluated_set_name"] = "test split" if split_mode == "test" else "all objects"
        metrics["evaluated_data"] = {
            "path": str(args.data),
            "split": split_mode,
            "split_description": "the model's stored test split"
            if split_mode == "test"
            else "every object of the set",
            "provenance": data.provenance,
        }
        if compared:
            metrics = attach_comparison(metrics, compared)
        meta_dict = metadata.model_dump(mode="json")
        if args.out is None:
            # In place: metrics.json and report/ of the model directory, each replaced atomically.
            tmp_metrics = model_dir / "metrics.json.tmp"
            try:
                write_json(tmp_metrics, metrics)
                with atomic_directory(model_dir / "report") as tmp:
                    write_report(tmp, json.loads(tmp_metrics.read_text()), metadata=meta_dict)
                os.replace(tmp_metrics, model_dir / "metrics.json")
            finally:
                tmp_metrics.unlink(missing_ok=True)
            report_path = model_dir / "report" / "README.md"
        else:
            with atomic_directory(args.out) as tmp:
                write_json(tmp / "metrics.json", metrics)
                write_report(tmp, json.loads((tmp / "metrics.json").read_text()), metadata=meta_dict)
            report_path = Path(args.out) / "README.md"
    except (ValueError, FileNotFoundError) as exc:
        _say(f"error: {exc}")
        return 2
    _say(
        f"done: {report_path}  test AUC {metrics['test']['auc']:.4f}  "
        f"macro F1 {metrics['test']['f1_macro']:.4f}"
    )
    return 0
