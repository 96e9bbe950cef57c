"""Pure light-curve core: types, preprocessing, sky context and the artifact metadata schema.

Imports numpy, scipy, astropy and pydantic only (no keras, redis, fastapi, httpx), so that the
trainer and the service share one implementation of every model input.
"""

from lightcurve.metadata import SCHEMA_VERSION, ArtifactMetadata, ContextSpec, SequenceSpec, load_metadata
from lightcurve.preprocessing import (
    SequenceInput,
    context_matrix,
    context_vector,
    sequence_input,
    sequence_input_from_detections,
    step_matrix,
    step_vector,
)
from lightcurve.types import Detection, LightCurve, SkyPosition, derive_detection_id

__all__ = [
    "SCHEMA_VERSION",
    "ArtifactMetadata",
    "ContextSpec",
    "Detection",
    "LightCurve",
    "SequenceInput",
    "SequenceSpec",
    "SkyPosition",
    "context_matrix",
    "context_vector",
    "derive_detection_id",
    "load_metadata",
    "sequence_input",
    "sequence_input_from_detections",
    "step_matrix",
    "step_vector",
]
