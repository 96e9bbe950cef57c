"""Request and response bodies of the HTTP API (pydantic; they become the OpenAPI schema).

Field constraints reuse the pure core's ranges (``lightcurve.types``), and add what only a network
API needs: numbers must be JSON numbers (``true`` or ``"18.4"`` is a 422, not 1.0 or 18.4), ``mag_err``
has a floor (``MAG_ERR_MIN``), and an identifier may not be made only of dots (``ApiIdentifier``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from lightcurve.types import (
    HOST_SEP_MAX_ARCSEC,
    MAG_ERR_MAX,
    MAG_RANGE,
    MJD_RANGE,
    FiniteFloat,
    derive_detection_id,
)

__all__ = [
    "API_ID_PATTERN",
    "MAG_ERR_MIN",
    "ApiIdentifier",
    "BatchRequest",
    "BatchResponse",
    "Classification",
    "DetectionRequest",
    "HistoryRow",
    "Liveness",
    "ObjectView",
    "ProbabilityHistory",
    "Readiness",
]

#: Smallest magnitude error accepted (mag). Scintillation alone limits ground-based photometry to
#: ~1 mmag; 0.1 mmag leaves a factor of ten, and excludes zeros and denormals (1e-320) that would
#: otherwise reach the model as weights of ~1/mag_err.
MAG_ERR_MIN = 1e-4

#: The identifier rule (1-64 of letters, digits and ``_.:+-``) minus ids made only of dots: HTTP
#: clients remove ``.`` and ``..`` path segments (RFC 3986), so ``GET /objects/..`` never reaches the
#: service and such an object could be written but not read back. One non-dot character is required
#: (a linear-time pattern: pydantic-core's regex engine has no look-ahead); length is checked apart.
API_ID_PATTERN = r"^[A-Za-z0-9_.:+\-]*[A-Za-z0-9_:+\-][A-Za-z0-9_.:+\-]*$"
ApiIdentifier = Annotated[str, StringConstraints(pattern=API_ID_PATTERN, max_length=64)]

#: A finite JSON number: ``strict`` refuses booleans and numeric strings (lax mode reads ``true`` as 1.0).
Number = Annotated[FiniteFloat, Strict()]

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

    object_id: ApiIdentifier
    detection_id: ApiIdentifier | None = Field(
        None, description="Unique per object; derived from mjd and filter when absent (see idempotency)."
    )
    mjd: Annotated[Number, Field(ge=MJD_RANGE[0], le=MJD_RANGE[1])]
    mag: Annotated[Number, Field(ge=MAG_RANGE[0], le=MAG_RANGE[1])]
    mag_err: Annotated[Number, Field(ge=MAG_ERR_MIN, le=MAG_ERR_MAX)]
    ra: Annotated[Number, Field(ge=0.0, lt=360.0)] | None = None
    dec: Annotated[Number, Field(ge=-90.0, le=90.0)] | None = None
    filter: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_.\-]+$")] = "L"
    host_sep_arcsec: Annotated[Number, Field(ge=0.0, le=HOST_SEP_MAX_ARCSEC)] | None = Field(
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


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """``ready`` (200) when Redis answers and the model is loaded, else ``starting``/``unavailable`` (503)."""

    status: Literal["ready", "starting", "unavailable"]
    redis: bool
    model: bool
    model_version: str | None = None
