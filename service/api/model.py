"""``GET /model``: the model card, from the artifact's metadata."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.api.deps import JSONBytes, ModelDep, ReadAccess

router = APIRouter(tags=["model"], dependencies=[ReadAccess])


@router.get("/model", response_model=dict[str, Any])
async def model_card(model: ModelDep) -> JSONBytes:
    """Model name and version, classes, thresholds, input specification, training configuration and
    metrics, and the start-up check of the step engine against the Keras model."""
    meta = model.metadata.model_dump(mode="json")
    check = model.check
    meta["engine"] = {
        "kind": model.engine.kind,
        "source": model.source,
        "state_size": model.engine.state_size,
        "verified_on_sequences": check.n_sequences,
        "max_abs_diff_probabilities": check.max_abs_diff_probabilities,
        "max_abs_diff_rnn_output": check.max_abs_diff_rnn_output,
        "tolerance": check.tolerance,
    }
    return JSONBytes(meta)
