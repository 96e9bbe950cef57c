"""Request and response bodies of the HTTP API (pydantic; they become the OpenAPI schema).

Field constraints reuse the pure core's validated types (``lightcurve.types``), so the service and
the trainer's loader reject exactly the same values and name the same fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lightcurve.types import (
    HOST_SEP_MAX_ARCSEC,
    MAG_ERR_MAX,
    MAG_RANGE,
    MJD_RANGE,
    FiniteFloat,
    Identifier,
    derive_detection_id,
)

__all__ = [
    "BatchRequest",
    "BatchResponse",
    "Classification",
    "DetectionRequest",
    "HistoryRow",
    "ObjectView",
    "ProbabilityHistory",
]

_EXAMPLE = {
    "object_id": "GOTO_SN2019euw",
    "detection_id": "GOTO_SN2019euw-0001",
    "mjd": 58605.179148,
    "mag": 18.21,
    "mag_err": 0.05,
    "ra": 288.513394,
    "dec": -23.2105078,
    "filter": "L",
}


class DetectionRequest(BaseModel):
    """One detection of one object. ``ra``/``dec`` are required for an object's first detection."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})  # type: ignore[list-item]

    object_id: Identifier
    detection_id: Identifier | None = Field(
        None, description="Unique per object; derived from mjd and filter when absent (see idempotency)."
    )
    mjd: Annotated[FiniteFloat, Field(ge=MJD_RANGE[0], le=MJD_RANGE[1])]
    mag: Annotated[FiniteFloat, Field(ge=MAG_RANGE[0], le=MAG_RANGE[1])]
    mag_err: Annotated[FiniteFloat, Field(gt=0.0, le=MAG_ERR_MAX)]
    ra: Annotated[FiniteFloat, Field(ge=0.0, lt=360.0)] | None = None
    dec: Annotated[FiniteFloat, Field(ge=-90.0, le=90.0)] | None = None
    filter: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_.\-]+$")] = "L"
    host_sep_arcsec: Annotated[FiniteFloat, Field(ge=0.0, le=HOST_SEP_MAX_ARCSEC)] | None = Field(
        None, description="Distance to the host galaxy; when absent the configured catalogue is used."
    )

    def key(self) -> str:
        """The detection id, derived from (object_id, mjd, filter) when the request has none."""
        return self.detection_id or derive_detection_id(self.object_id, self.mjd, self.filter)

    @property
    def has_position(self) -> bool:
        return self.ra is not None and self.dec is not None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"detections": [_EXAMPLE]}]})  # type: ignore[list-item]

    detections: list[DetectionRequest] = Field(min_length=1)


Status = Literal["classified", "duplicate", "stored"]


class Classification(BaseModel):
    """An object's classification after one detection.

    ``status``: ``classified`` (this detection updated it), ``duplicate`` (already stored: nothing
    changed), ``stored`` (kept in the light curve but beyond the model's first ``n_steps`` detections,
    so the classification is unchanged).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object_id": "GOTO_SN2019euw",
                    "detection_id": "GOTO_SN2019euw-0001",
                    "status": "classified",
                    "mode": "incremental",
                    "n_detections": 3,
                    "n_used": 3,
                    "probabilities": {"VS": 0.08, "SN": 0.85, "AGN": 0.07},
                    "predicted_class": "SN",
                    "model_version": "gru-focal-2024.1",
                    "revision": 3,
                    "updated_at": "2024-05-01T12:00:00+00:00",
                }
            ]
        }
    )

    object_id: str
    detection_id: str
    status: Status
    mode: Literal["incremental", "recompute", "none"]
    n_detections: int
    n_used: int
    probabilities: dict[str, float]
    predicted_class: str
    model_version: str
    revision: int
    updated_at: str


class BatchResponse(BaseModel):
    results: list[Classification]


class HistoryRow(BaseModel):
    detection_id: str
    mjd: float
    n_detections: int
    n_used: int
    probabilities: dict[str, float]
    predicted_class: str
    model_version: str
    mode: str
    revision: int
    time: str


class ProbabilityHistory(BaseModel):
    object_id: str
    latest: Classification
    history: list[HistoryRow]


class ObjectView(BaseModel):
    object_id: str
    n_detections: int
    light_curve: list[dict[str, Any]]
    context: dict[str, Any]
    latest: Classification
