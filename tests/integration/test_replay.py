"""``goto-classifier replay`` against a real server: the two real GOTO light curves end classified."""

from __future__ import annotations

import argparse

import httpx
import pandas as pd
import pytest

from service.replay import build_requests, replay, replay_command


def test_replay_of_real_goto_light_curves_prints_their_final_classes(server, real_goto_dir, capsys):
    args = argparse.Namespace(file=str(real_goto_dir / "detections.csv"), objects=None, url=server.url,
                              rate=0.0, api_key=None)
    assert replay_command(args) == 0
    out = capsys.readouterr().out
    assert "sent 15 detections" in out and "accepted 15, rejected 0" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("GOTO_")}
    assert set(lines) == {"GOTO_IRAS18547+1254", "GOTO_SN2019euw"}
    # object, n_detections, predicted class, one probability per class, label
    assert lines["GOTO_SN2019euw"][1] == "8" and lines["GOTO_IRAS18547+1254"][1] == "7"
    for cols in lines.values():
        assert cols[2] in {"VS", "SN", "AGN"}
        assert sum(float(p) for p in cols[3:6]) == pytest.approx(1.0, abs=2e-3)
    stored = httpx.get(f"{server.url}/objects/GOTO_SN2019euw/probabilities").json()
    assert len(stored["history"]) == 8


def test_replaying_twice_changes_nothing(server, real_goto_dir):
    detections = pd.read_csv(real_goto_dir / "detections.csv")
    objects = pd.read_csv(real_goto_dir / "objects.csv")
    requests = build_requests(detections, objects)
    with httpx.Client(base_url=server.url) as client:
        first = replay(requests, client, progress=False)
        second = replay(requests, client, progress=False)
    assert first.final.keys() == second.final.keys()
    for object_id, result in first.final.items():
        assert second.final[object_id]["probabilities"] == result["probabilities"]
        assert second.final[object_id]["status"] == "duplicate"


def test_requests_are_in_time_order_across_objects_with_positions(real_goto_dir):
    detections = pd.read_csv(real_goto_dir / "detections.csv")
    objects = pd.read_csv(real_goto_dir / "objects.csv")
    requests = build_requests(detections.sample(frac=1.0, random_state=1), objects)
    mjds = [r["mjd"] for r in requests]
    assert mjds == sorted(mjds)
    assert all("ra" in r and "dec" in r for r in requests)


def test_object_without_position_is_reported_by_name(real_goto_dir):
    detections = pd.read_csv(real_goto_dir / "detections.csv")
    objects = pd.read_csv(real_goto_dir / "objects.csv").iloc[:1]
    with pytest.raises(ValueError, match="no ra/dec for object 'GOTO_SN2019euw'"):
        build_requests(detections, objects)


def test_paced_replay_respects_the_rate(server, real_goto_dir):
    requests = build_requests(pd.read_csv(real_goto_dir / "detections.csv"),
                              pd.read_csv(real_goto_dir / "objects.csv"))
    with httpx.Client(base_url=server.url) as client:
        summary = replay(requests, client, rate=30.0, progress=False)
    # At 30/s detections go in chunks of 3 (one per 0.1 s): the fifth chunk may not start before
    # detection 12's slot, 12/30 s after the start; unpaced, the same replay takes a few ms here.
    assert summary.seconds >= 12 / 30
    assert summary.accepted == 15
