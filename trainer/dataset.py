"""From survey tables to a split, fitted input specs and model inputs: what every command trains on.

``prepare_training_data`` splits by object, fits the normalisation on the training split only, and
builds the inputs of every object through ``lightcurve``. ``prepare_for_artifact`` rebuilds the same
thing for an existing model directory (its specs are taken as they are, never refitted) and checks
that the stored split digests are reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lightcurve.metadata import ContextSpec, SequenceSpec
from trainer.split import SPLIT_NAMES, Split, ids_digest, stratified_split
from trainer.tensors import (
    ModelInputs,
    build_inputs,
    concat_inputs,
    fit_context_stats,
    fit_sequence_stats,
    label_indices,
)

_SEQUENCE_DEFAULTS = {name: f.default for name, f in SequenceSpec.model_fields.items()}
_CONTEXT_DEFAULTS = {name: f.default for name, f in ContextSpec.model_fields.items()}

__all__ = ["DataOptions", "PreparedData", "prepare_for_artifact", "prepare_training_data"]


@dataclass(frozen=True)
class DataOptions:
    """Choices about inputs and split; all recorded in the artifact."""

    seed: int = 42
    test_fraction: float = 0.3
    validation_fraction: float = 0.3
    #: z-score the inputs with statistics fitted on the training split (the paper states none).
    normalise: bool = True
    # defaults from the artifact schema (lightcurve.metadata), the one place they are written
    n_steps: int = _SEQUENCE_DEFAULTS["n_steps"]
    mask_value: float = _SEQUENCE_DEFAULTS["mask_value"]
    max_host_sep_arcsec: float = _CONTEXT_DEFAULTS["max_host_sep_arcsec"]
    #: Host distance used beyond ``max_host_sep_arcsec`` or without a match (paper: "a dummy value").
    dummy_host_sep_arcsec: float = _CONTEXT_DEFAULTS["dummy_host_sep_arcsec"]


@dataclass(frozen=True)
class PreparedData:
    """All objects' inputs, the split, the fitted specs and where the data came from."""

    inputs: ModelInputs
    split: Split
    sequence_spec: SequenceSpec
    context_spec: ContextSpec
    class_names: tuple[str, ...]
    options: DataOptions
    provenance: dict[str, Any] = field(default_factory=dict)
    #: Objects beyond the split's own (real sets, augmented copies: :mod:`trainer.mixed`), appended to
    #: the training and validation sets; the test set is always the split's.
    extra_train: ModelInputs | None = None
    extra_validation: ModelInputs | None = None

    def part(self, name: str) -> ModelInputs:
        """Inputs of one split set: ``train``, ``validation`` or ``test`` (with their extras)."""
        own = self.inputs.subset(self.split.indices(name))
        extra = {"train": self.extra_train, "validation": self.extra_validation}.get(name)
        return own if extra is None or len(extra) == 0 else concat_inputs([own, extra])

    def split_record(self) -> dict[str, Any]:
        return self.split.describe(self.inputs.object_ids, self.inputs.labels, self.class_names)

    def context_spec_for(self, use_context: bool) -> ContextSpec:
        return self.context_spec.model_copy(update={"enabled": use_context})


def _provenance(tables: Any, ids: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict:
    counts = np.bincount(labels, minlength=len(class_names))
    return {
        **dict(getattr(tables, "provenance", {}) or {}),
        "n_objects": int(ids.size),
        "n_detections": len(tables.detections),
        "class_counts": {c: int(n) for c, n in zip(class_names, counts, strict=True)},
        "object_ids_sha256": ids_digest(ids),
    }


def prepare_training_data(tables: Any, options: DataOptions, class_names: Sequence[str]) -> PreparedData:
    """Split ``tables`` by object, fit specs on the training split, build every object's inputs."""
    from trainer.data import object_context

    class_names = tuple(class_names)
    object_ids = tables.objects["object_id"].astype(str).to_numpy()
    labels = label_indices(tables.objects["label"].reset_index(drop=True), class_names)
    split = stratified_split(
        object_ids,
        labels,
        seed=options.seed,
        test_fraction=options.test_fraction,
        validation_fraction=options.validation_fraction,
    )
    context_frame = object_context(tables)
    seq_spec = SequenceSpec(n_steps=options.n_steps, mask_value=options.mask_value)
    ctx_spec = ContextSpec(
        max_host_sep_arcsec=options.max_host_sep_arcsec, dummy_host_sep_arcsec=options.dummy_host_sep_arcsec
    )
    if options.normalise:
        # Raw inputs of the training objects only; the statistics never see validation or test.
        raw = build_inputs(tables, context_frame, seq_spec, ctx_spec, class_names, rows=split.train)
        seq_spec = seq_spec.model_copy(update={"normalisation": fit_sequence_stats(raw.series, raw.n_valid)})
        ctx_spec = ctx_spec.model_copy(update={"normalisation": fit_context_stats(raw.context)})
    inputs = build_inputs(tables, context_frame, seq_spec, ctx_spec, class_names)
    return PreparedData(
        inputs=inputs,
        split=split,
        sequence_spec=seq_spec,
        context_spec=ctx_spec,
        class_names=class_names,
        options=options,
        provenance=_provenance(tables, object_ids, labels, class_names),
    )


def prepare_for_artifact(
    tables: Any,
    sequence_spec: SequenceSpec,
    context_spec: ContextSpec,
    class_names: Sequence[str],
    split_record: dict[str, Any] | None,
) -> PreparedData:
    """Inputs built with an artifact's specs; the split reproduced from ``split_record``.

    Raises ``ValueError`` if the stored per-set digests are not reproduced (different data).
    With ``split_record=None`` every object is put in the test set (evaluation of foreign data).
    """
    from trainer.data import object_context

    class_names = tuple(class_names)
    object_ids = tables.objects["object_id"].astype(str).to_numpy()
    labels = label_indices(tables.objects["label"].reset_index(drop=True), class_names)
    if split_record is None:
        empty = np.array([], dtype=np.intp)
        split = Split(empty, empty, np.arange(object_ids.size, dtype=np.intp), -1, 1.0, 0.0)
    else:
        split = stratified_split(
            object_ids,
            labels,
            seed=int(split_record["seed"]),
            test_fraction=float(split_record["test_fraction"]),
            validation_fraction=float(split_record["validation_fraction"]),
        )
        for name in SPLIT_NAMES:
            if ids_digest(object_ids[split.indices(name)]) != split_record[name]["ids_sha256"]:
                raise ValueError(
                    f"split.json: the {name} set is not reproduced on this data (different objects); "
                    "evaluate with --split all to score every object instead"
                )
    inputs = build_inputs(tables, object_context(tables), sequence_spec, context_spec, class_names)
    options = DataOptions(
        seed=split.seed,
        normalise=sequence_spec.normalisation is not None,
        n_steps=sequence_spec.n_steps,
        mask_value=sequence_spec.mask_value,
        max_host_sep_arcsec=context_spec.max_host_sep_arcsec,
        dummy_host_sep_arcsec=context_spec.dummy_host_sep_arcsec,
    )
    return PreparedData(
        inputs=inputs,
        split=split,
        sequence_spec=sequence_spec,
        context_spec=context_spec,
        class_names=class_names,
        options=options,
        provenance=_provenance(tables, object_ids, labels, class_names),
    )
