"""Artifact metadata: the only contract between the trainer and the service.

A model directory holds ``model.keras`` and ``metadata.json``. Everything the service needs to turn
detections into model inputs (class order, sequence length, mask value, dummy distance, normalisation
statistics, feature order, layer names for incremental inference) lives here, so the service
hard-codes none of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lightcurve.calibration import Calibration

__all__ = [
    "SCHEMA_VERSION",
    "ArtifactMetadata",
    "ContextSpec",
    "FeatureStats",
    "LayerNames",
    "SequenceSpec",
    "load_metadata",
]

SCHEMA_VERSION = 1

TIME_SERIES_FEATURES = ("dt_days", "mag", "mag_err")
CONTEXT_FEATURES = ("gal_l_deg", "gal_b_deg", "host_sep_arcsec")


class FeatureStats(BaseModel):
    """Per-feature mean and standard deviation, fitted on the training split only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @model_validator(mode="after")
    def _check(self) -> FeatureStats:
        if len(self.mean) != len(self.std):
            raise ValueError("mean and std must have the same length")
        if any(not s > 0 for s in self.std):
            raise ValueError("std must be positive")
        return self


class SequenceSpec(BaseModel):
    """How detections become the time-series input XT (paper section 2.3)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_steps: int = Field(30, ge=1, le=1000)
    features: tuple[str, ...] = TIME_SERIES_FEATURES
    #: Value written into every feature of a padded step; Keras ``Masking`` skips such steps.
    mask_value: float = -999.0
    #: z-score statistics applied to real steps (None: raw values, as the paper's text implies).
    normalisation: FeatureStats | None = None

    @model_validator(mode="after")
    def _check(self) -> SequenceSpec:
        if self.features != TIME_SERIES_FEATURES:
            raise ValueError(f"features must be {TIME_SERIES_FEATURES}")
        if self.normalisation is not None and len(self.normalisation.mean) != len(self.features):
            raise ValueError("normalisation must have one entry per feature")
        return self


class ContextSpec(BaseModel):
    """How sky position and host match become the context input XC (paper section 2.3)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    features: tuple[str, ...] = CONTEXT_FEATURES
    #: Beyond this separation (or with no catalogue match) the distance is replaced by the dummy.
    max_host_sep_arcsec: float = Field(60.0, gt=0)
    dummy_host_sep_arcsec: float = 100.0
    normalisation: FeatureStats | None = None

    @model_validator(mode="after")
    def _check(self) -> ContextSpec:
        if self.features != CONTEXT_FEATURES:
            raise ValueError(f"features must be {CONTEXT_FEATURES}")
        if self.normalisation is not None and len(self.normalisation.mean) != len(self.features):
            raise ValueError("normalisation must have one entry per feature")
        return self


class LayerNames(BaseModel):
    """Names of the layers the service rebuilds for step-by-step (incremental) inference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rnn: tuple[str, ...]
    rnn_batchnorm: tuple[str, ...]
    head: tuple[str, ...] = ()


class ArtifactMetadata(BaseModel):
    """Everything a model directory says about itself."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    schema_version: Literal[1] = SCHEMA_VERSION
    model_name: str = "goto-rnn"
    model_version: str
    created_at: str
    class_names: tuple[str, ...] = ("VS", "SN", "AGN")
    rnn_type: Literal["gru", "lstm"]
    sequence: SequenceSpec = SequenceSpec()
    context: ContextSpec = ContextSpec()
    layers: LayerNames
    #: Classification thresholds per class (paper Table 3 uses 0.7).
    thresholds: dict[str, float] = Field(default_factory=lambda: {"VS": 0.7, "SN": 0.7, "AGN": 0.7})
    #: Full training configuration (loss, gamma, units, epochs, seed, departures from the paper, ...).
    training: dict[str, Any] = Field(default_factory=dict)
    #: Where the data came from (simulator seed and version, or real-data file hashes).
    data: dict[str, Any] = Field(default_factory=dict)
    #: Headline metrics (the full set lives in metrics.json).
    metrics: dict[str, Any] = Field(default_factory=dict)
    #: Post-hoc calibration fitted on the validation split (lightcurve.calibration); None: the raw
    #: softmax, as the paper.
    calibration: Calibration | None = None

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"

    def write(self, model_dir: Path) -> Path:
        path = Path(model_dir) / "metadata.json"
        path.write_text(self.to_json())
        return path


def load_metadata(model_dir: str | Path) -> ArtifactMetadata:
    """Read and validate ``model_dir/metadata.json``; raise ``ValueError`` naming the problem."""
    path = Path(model_dir) / "metadata.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: no metadata.json in model directory") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION})")
    return ArtifactMetadata.model_validate(raw)
