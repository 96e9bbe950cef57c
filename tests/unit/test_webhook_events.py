"""Event planning: which updates notify, hysteresis, deterministic ids, payload contents."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.webhooks.config import (
    EVENT_CLASS_CHANGED,
    EVENT_THRESHOLD_CROSSED,
    EVENT_TYPES,
    EVENT_UPDATED,
    Subscription,
)
from service.webhooks.events import ClassificationUpdate, NotifyState, plan_events
from service.webhooks.schema import PAYLOAD_JSON_SCHEMA

MARSHALL = Subscription(id="marshall", url="https://marshall.example/hook", secret="k")
EVERYTHING = Subscription(id="all", url="https://all.example/hook", secret="k", events=list(EVENT_TYPES))


def _update(n: int, sn: float, *, previous: str | None = "VS", predicted: str | None = None,
            detection_id: str | None = None) -> ClassificationUpdate:
    vs = (1.0 - sn) * 0.7
    probabilities = {"VS": vs, "SN": sn, "AGN": 1.0 - sn - vs}
    return ClassificationUpdate(
        object_id="GOTO_IRAS18547+1254", detection_id=detection_id or f"det{n}", n_detections=n,
        mjd=59000.0 + n, probabilities=probabilities,
        predicted_class=predicted or max(probabilities, key=probabilities.__getitem__),
        previous_predicted_class=previous if n > 1 else None, model_version="gru-focal-1", time=1.7e9 + n,
    )


def _run(probabilities_sn: list[float], sub: Subscription = MARSHALL) -> list[list[str]]:
    """Feed a sequence of SN probabilities through plan_events, carrying the state; return event types."""
    state: NotifyState | None = None
    out = []
    for n, sn in enumerate(probabilities_sn, start=1):
        events, state = plan_events(state, _update(n, sn), [sub])
        state = NotifyState.from_json(state.to_json())  # as the service stores it
        out.append([e.type for e in events if e.type == EVENT_THRESHOLD_CROSSED])
    return out


def test_hysteresis_one_event_while_hovering_around_threshold() -> None:
    hovering = [0.72, 0.69, 0.71, 0.65, 0.74, 0.61, 0.70]
    fired = _run(hovering)
    assert fired == [[EVENT_THRESHOLD_CROSSED]] + [[]] * (len(hovering) - 1)


def test_rearms_only_below_rearm_threshold_then_fires_again() -> None:
    fired = _run([0.75, 0.59, 0.71, 0.8])
    assert [len(f) for f in fired] == [1, 0, 1, 0]


def test_threshold_is_per_class_and_configurable() -> None:
    strict = Subscription(id="strict", url="https://s.example/", secret="k", thresholds={"SN": 0.9})
    assert [len(f) for f in _run([0.75, 0.85, 0.95], strict)] == [0, 0, 1]
    events, _ = plan_events(None, _update(1, 0.05), [MARSHALL])
    # SN 0.05 -> VS 0.665, AGN 0.285: nothing at 0.7; VS at 0.665 must not fire either.
    assert events == []


def test_class_changed_only_when_previous_class_differs() -> None:
    first = _update(1, 0.9, previous=None)
    events, _ = plan_events(None, first, [MARSHALL])
    assert EVENT_CLASS_CHANGED not in [e.type for e in events]  # first classification is not a change
    same = _update(2, 0.9, previous="SN")
    types = [e.type for e in plan_events(None, same, [EVERYTHING])[0]]
    assert types == [EVENT_UPDATED, EVENT_THRESHOLD_CROSSED]
    changed = _update(3, 0.9, previous="VS")
    types = [e.type for e in plan_events(NotifyState(), changed, [EVERYTHING])[0]]
    assert types == [EVENT_UPDATED, EVENT_CLASS_CHANGED, EVENT_THRESHOLD_CROSSED]


def test_updated_is_opt_in() -> None:
    assert all(not plan_events(None, _update(n, 0.1), [MARSHALL])[0] for n in range(1, 4))
    assert [e.type for e in plan_events(None, _update(1, 0.1), [EVERYTHING])[0]] == [EVENT_UPDATED]


def test_event_ids_are_deterministic_and_distinct() -> None:
    update = _update(4, 0.8, previous="VS")
    first, _ = plan_events(None, update, [MARSHALL, EVERYTHING])
    again, _ = plan_events(None, update, [MARSHALL, EVERYTHING])  # a retried commit re-plans
    assert [e.id for e in first] == [e.id for e in again]
    assert [e.body for e in first] == [e.body for e in again]
    assert len({e.id for e in first}) == len(first) == 5  # per subscription, per type and class
    other_detection = _update(4, 0.8, previous="VS", detection_id="another")
    assert {e.id for e in plan_events(None, other_detection, [MARSHALL])[0]}.isdisjoint({e.id for e in first})
    new_model = dataclasses.replace(update, model_version="gru-focal-2")
    assert {e.id for e in plan_events(None, new_model, [MARSHALL])[0]}.isdisjoint({e.id for e in first})


def test_payload_fields() -> None:
    update = _update(6, 0.8, previous="VS")
    (changed, crossed), _ = plan_events(None, update, [MARSHALL])
    body = json.loads(crossed.body)
    assert body["id"] == crossed.id
    assert body["type"] == EVENT_THRESHOLD_CROSSED
    assert body["object_id"] == "GOTO_IRAS18547+1254"
    assert body["detection_id"] == "det6"
    assert body["n_detections"] == body["sequence"] == 6
    assert body["probabilities"]["SN"] == pytest.approx(0.8)
    assert body["predicted_class"] == "SN" and body["previous_predicted_class"] == "VS"
    assert body["model_version"] == "gru-focal-1"
    assert body["time"] == "2023-11-14T22:13:26.000Z"  # 1.7e9 + 6 unix seconds
    assert body["threshold"] == {"class": "SN", "value": 0.7, "rearm_below": pytest.approx(0.6),
                                 "probability": pytest.approx(0.8)}
    assert json.loads(changed.body)["threshold"] is None
    assert crossed.sequence == 6 and crossed.subscription_id == "marshall"


def test_explicit_sequence_is_used_for_ordering() -> None:
    update = ClassificationUpdate("obj1", "d1", 3, 59000.0, {"VS": 0.9, "SN": 0.1}, "VS", "SN", "v1",
                                  datetime(2024, 1, 1, tzinfo=UTC), sequence=17)
    events, _ = plan_events(None, update, [MARSHALL])
    event = events[0]
    assert event.payload["sequence"] == 17 and event.payload["n_detections"] == 3
    assert event.payload["time"] == "2024-01-01T00:00:00.000Z"


def test_state_is_sparse_and_round_trips() -> None:
    _, state = plan_events(None, _update(1, 0.9, previous=None), [MARSHALL, EVERYTHING])
    assert not state.is_armed("marshall", "SN") and state.is_armed("marshall", "VS")
    assert NotifyState.from_json(state.to_json()) == state
    assert NotifyState.from_json(None) == NotifyState.from_json(b"") == NotifyState()
    _, cleared = plan_events(state, _update(2, 0.1), [MARSHALL, EVERYTHING])
    assert cleared.to_json() == '{"disarmed":{}}'
    with pytest.raises(ValueError, match="notify state"):
        NotifyState.from_json("[1, 2]")


def test_state_of_removed_subscription_is_dropped() -> None:
    _, state = plan_events(None, _update(1, 0.9, previous=None), [MARSHALL])
    _, after = plan_events(state, _update(2, 0.9), [EVERYTHING])
    assert "marshall" not in after.disarmed


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"object_id": "bad id"}, "object_id"),
        ({"n_detections": 0}, "n_detections"),
        ({"probabilities": {"VS": float("nan"), "SN": 0.5}}, "probabilities.VS"),
        ({"probabilities": {"VS": 1.5}}, "probabilities.VS"),
        ({"predicted_class": "QSO"}, "predicted_class"),
    ],
)
def test_bad_update_names_the_field(change: dict, field: str) -> None:
    args = {"object_id": "obj", "detection_id": "d1", "n_detections": 1, "mjd": 59000.0,
            "probabilities": {"VS": 0.5, "SN": 0.5}, "predicted_class": "VS",
            "previous_predicted_class": None, "model_version": "v", "time": 0.0}
    args.update(change)
    with pytest.raises(ValueError, match=f"^{field}"):
        ClassificationUpdate(**args)


DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def _json_block_after(marker: str, text: str) -> object:
    start = text.index("```json\n", text.index(marker)) + len("```json\n")
    return json.loads(text[start:text.index("```", start)])


def test_documented_schema_is_the_packaged_schema() -> None:
    text = DOCS.read_text()
    assert _json_block_after("<!-- payload-schema -->", text) == PAYLOAD_JSON_SCHEMA


def test_payloads_and_documented_example_match_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(PAYLOAD_JSON_SCHEMA)
    events, _ = plan_events(None, _update(3, 0.8, previous="VS"), [EVERYTHING])
    assert {e.type for e in events} == set(EVENT_TYPES)
    for event in events:
        validator.validate(event.payload)
    validator.validate(_json_block_after("## Payload", DOCS.read_text()))
    broken = {**events[0].payload, "sequence": "6"}
    assert not validator.is_valid(broken)
