"""Training data beyond the simulated sky: real labelled sets, augmented copies, unknown hosts.

All three are options (off by default: the paper trains on its simulated sky alone) and are recorded
in the artifact metadata (``training.real_sets``, ``training.augment``, ``training.host_unknown_fraction``).

- **Real sets** (:mod:`trainer.real_sets`): each set is adapted with its preset and split by object with
  :func:`trainer.real_sets.real_split`; its training part joins the training split, its validation part
  the validation split, and its test part is never seen (the real-data benchmark scores it).
- **Augmented copies** (:mod:`trainer.augment`) of every training object (simulated and real) join the
  training split only.
- **Unknown hosts**: the real sets have no galaxy match, and a survey may run without a catalogue. A
  seeded share of the training objects gets the "no match" host distance, so that the dummy value stops
  meaning "certainly hostless" and the model stays useful when the host is unknown.

The simulated test split is untouched, so ``evaluate`` reproduces it from ``split.json`` as before.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from trainer.augment import AugmentOptions, augmented_copies
from trainer.dataset import PreparedData
from trainer.real_sets import REAL_SETS, real_split, split_rule
from trainer.split import ids_digest
from trainer.tensors import ModelInputs, build_inputs, concat_inputs

__all__ = ["MixOptions", "with_training_extras"]


@dataclasses.dataclass(frozen=True)
class MixOptions:
    """What joins the simulated training data (see the module docstring)."""

    real_sets: tuple[str, ...] = ()
    real_data_root: str | None = None
    real_test_fraction: float = 0.3
    real_validation_fraction: float = 0.15
    #: Extra augmented copies of each real training object (on top of ``augment.copies``): the real
    #: sets are ~1 % of the simulated sky, so they are repeated, each time perturbed.
    real_copies: int = 0
    #: Per-set overrides of ``real_copies`` (set name -> copies): a set of 80 objects needs more
    #: repeats than one of 800 to weigh as much.
    real_copies_by_set: tuple[tuple[str, int], ...] = ()
    augment: AugmentOptions = dataclasses.field(default_factory=AugmentOptions)
    host_unknown_fraction: float = 0.0

    def __post_init__(self) -> None:
        unknown = [s for s in self.real_sets if s not in REAL_SETS]
        if unknown:
            raise ValueError(f"real sets: unknown {unknown}; known: {sorted(REAL_SETS)}")
        if not 0.0 <= self.host_unknown_fraction <= 1.0:
            raise ValueError(f"host_unknown_fraction must lie in [0, 1], got {self.host_unknown_fraction}")

    @property
    def is_identity(self) -> bool:
        return not self.real_sets and self.augment.copies == 0 and self.host_unknown_fraction == 0.0


def _inputs(tables: Any, data: PreparedData, rows: np.ndarray | None = None) -> ModelInputs:
    from trainer.data import object_context

    return build_inputs(
        tables, object_context(tables), data.sequence_spec, data.context_spec, data.class_names, rows=rows
    )


def _subset_tables(tables: Any, rows: np.ndarray) -> Any:
    objects = tables.objects.iloc[rows].reset_index(drop=True)
    detections = tables.detections.loc[tables.detections["object_id"].isin(objects["object_id"])]
    return dataclasses.replace(tables, objects=objects, detections=detections.reset_index(drop=True))


def _copies(
    tables: Any, data: PreparedData, copies: int, options: MixOptions, seed: int
) -> list[ModelInputs]:
    if copies == 0 or len(tables.objects) == 0:
        return []
    augment = dataclasses.replace(options.augment, copies=copies)
    out = augmented_copies(tables, tables.objects["object_id"], augment, seed)
    return [_inputs(out, data)] if len(out.objects) else []


def _hide_hosts(inputs: ModelInputs, data: PreparedData, fraction: float, seed: int) -> ModelInputs:
    """``inputs`` with a seeded share of objects given the "no match" host distance."""
    from lightcurve.preprocessing import context_matrix

    if fraction == 0.0 or len(inputs) == 0:
        return inputs
    rng = np.random.default_rng([seed, 7001])
    hidden = rng.random(len(inputs)) < fraction
    # the host column as lightcurve writes it for "no match" (normalised like every other value)
    no_match = context_matrix([0.0], [0.0], [float("nan")], data.context_spec)[0, 2]
    context = inputs.context.copy()
    context[hidden, 2] = no_match
    return dataclasses.replace(inputs, context=context)


def with_training_extras(
    data: PreparedData, sim_tables: Any, options: MixOptions, seed: int, log: Any = None
) -> PreparedData:
    """``data`` with real sets, augmented copies and hidden hosts added to training (and validation)."""
    from trainer.adapt import adapt_tables
    from trainer.data import load_tables
    from trainer.real_sets import default_real_dir

    if options.is_identity:
        return data
    say = log or (lambda _msg: None)
    train_parts: list[ModelInputs] = []
    val_parts: list[ModelInputs] = []
    record: dict[str, Any] = {"real_sets": [], "augment": options.augment.to_dict()}
    sim_train = _subset_tables(sim_tables, data.split.train)
    train_parts += _copies(sim_train, data, options.augment.copies, options, seed)
    root = Path(options.real_data_root) if options.real_data_root else default_real_dir()
    for k, name in enumerate(options.real_sets):
        real_set = REAL_SETS[name]
        tables = adapt_tables(load_tables(root / real_set.folder), real_set.adapter)
        ids = tables.objects["object_id"].astype(str).to_numpy()
        parts = real_split(
            ids,
            tables.objects["label"].to_numpy(),
            set_name=name,
            seed=seed,
            test_fraction=options.real_test_fraction,
            validation_fraction=options.real_validation_fraction,
        )
        train_rows, val_rows = np.flatnonzero(parts == "train"), np.flatnonzero(parts == "validation")
        train_parts.append(_inputs(tables, data, train_rows))
        val_parts.append(_inputs(tables, data, val_rows))
        copies = options.augment.copies + dict(options.real_copies_by_set).get(name, options.real_copies)
        real_train = _subset_tables(tables, train_rows)
        train_parts += _copies(real_train, data, copies, options, seed + 1000 * (k + 1))
        counts = {
            part: {c: int(np.sum((parts == part) & (tables.objects["label"].to_numpy() == c)))
                   for c in data.class_names}
            for part in ("train", "validation", "test")
        }
        record["real_sets"].append(
            {
                "name": name,
                "path": str(root / real_set.folder),
                "adapter": real_set.adapter.describe(),
                "split": split_rule(seed, options.real_test_fraction, options.real_validation_fraction),
                "class_counts": counts,
                "test_ids_sha256": ids_digest(ids[parts == "test"]),
                "copies_per_training_object": copies,
            }
        )
        say(f"real set {name}: train/validation/test {counts}")
    extra_train = _hide_hosts(concat_inputs(train_parts), data, options.host_unknown_fraction, seed)
    extra_val = concat_inputs(val_parts)
    # the simulated training objects themselves (not their validation or test) lose hosts too
    inputs = data.inputs
    if options.host_unknown_fraction:
        train = _hide_hosts(inputs.subset(data.split.train), data, options.host_unknown_fraction, seed + 1)
        context = inputs.context.copy()
        context[data.split.train] = train.context
        inputs = dataclasses.replace(inputs, context=context)
    record["host_unknown_fraction"] = options.host_unknown_fraction
    record["extra_training_objects"] = len(extra_train)
    record["extra_validation_objects"] = len(extra_val)
    record["extra_ids_sha256"] = ids_digest([*extra_train.object_ids, *extra_val.object_ids])
    say(f"training extras: {len(extra_train)} training and {len(extra_val)} validation objects added")
    return dataclasses.replace(
        data,
        inputs=inputs,
        extra_train=extra_train,
        extra_validation=extra_val,
        provenance={**data.provenance, "training_extras": record},
    )
