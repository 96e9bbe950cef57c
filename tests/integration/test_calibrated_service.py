"""A calibrated artifact: the service returns the same calibrated probabilities as ``evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from lightcurve.calibration import Calibration
from lightcurve.context import galactic_lb
from lightcurve.metadata import load_metadata
from lightcurve.preprocessing import context_vector, sequence_input
from tests.integration.conftest import ThreadServer, build_tiny_artifact, make_settings, offline_probabilities
from tests.integration.test_service_classify import light_curve, post_all, probs

pytestmark = pytest.mark.slow

#: Far from the identity, so that a service that forgot the calibration fails by a wide margin.
CALIBRATION = Calibration(
    method="vector", scale=(1.6, 0.7, 1.1), bias=(0.8, -0.5, -0.3), fitted_on="a test", n_objects=1
)


@pytest.fixture(scope="module")
def calibrated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = build_tiny_artifact(tmp_path_factory.mktemp("calibrated") / "gru", version="tiny-calibrated")
    meta = load_metadata(out)
    meta.model_copy(update={"calibration": CALIBRATION}).write(out)
    return out


def _evaluate_probabilities(model: Any, model_dir: Path, dets: list[dict[str, Any]]) -> np.ndarray:
    """What ``goto-classifier evaluate`` computes for this light curve (trainer.evaluation)."""
    from trainer.evaluation import predict_proba
    from trainer.tensors import ModelInputs

    meta = load_metadata(model_dir)
    x = sequence_input([d["mjd"] for d in dets], [d["mag"] for d in dets], [d["mag_err"] for d in dets],
                       meta.sequence, detection_ids=[d["detection_id"] for d in dets])
    gal_l, gal_b = galactic_lb(dets[0]["ra"], dets[0]["dec"])
    inputs = ModelInputs(
        object_ids=np.array([dets[0]["object_id"]]),
        series=x.values[None].astype(np.float32),
        context=context_vector(float(gal_l), float(gal_b), None, meta.context)[None].astype(np.float32),
        labels=np.zeros(1, dtype=np.int64),
        n_valid=np.array([x.n_valid]),
    )
    return predict_proba(model, inputs, use_context=True, calibration=meta.calibration)[0]


def test_service_and_evaluate_give_the_same_calibrated_probabilities(
    calibrated_dir: Path, clean_redis: str
) -> None:
    import keras

    from service.app import create_app
    from service.inference import load_model

    loaded = load_model(calibrated_dir)  # the start-up check compares calibrated outputs
    assert loaded.engine.calibration == CALIBRATION
    keras_model = keras.models.load_model(calibrated_dir / "model.keras", compile=False)
    dets = light_curve("GOTO_calibrated", 8)
    app = create_app(make_settings(calibrated_dir, clean_redis), model=loaded)
    with ThreadServer(app) as srv, httpx.Client(base_url=srv.url) as client:
        results = post_all(client, dets)
    for k in (1, 4, 8):
        served = probs(results[k - 1])
        np.testing.assert_allclose(served, _evaluate_probabilities(keras_model, calibrated_dir, dets[:k]),
                                   atol=1e-5)
        raw = offline_probabilities(keras_model, calibrated_dir, dets[:k])
        assert np.max(np.abs(served - raw)) > 0.01  # the calibration is applied, not skipped
