"""``goto-classifier replay``: stream a detections table into a running service in time order.

A night of survey data (or a simulated sky, or the two real GOTO light curves) is sent through
``POST /classify/batch`` exactly as the survey pipeline would send it: all objects interleaved in
time order, at a chosen rate. Positions come from the objects table beside the detections table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from tqdm import tqdm

__all__ = ["ReplaySummary", "read_table", "replay", "replay_command"]

BATCH_SIZE = 100
DETECTION_FIELDS = ("object_id", "detection_id", "mjd", "mag", "mag_err", "filter")
OBJECT_FIELDS = ("ra", "dec", "host_sep_arcsec")


@dataclass
class ReplaySummary:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    seconds: float = 0.0
    final: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet table, chosen by the file's suffix."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise ValueError(f"{path}: expected a .csv or .parquet file")


def _objects_beside(detections_path: Path) -> Path:
    for suffix in (".parquet", ".csv"):
        candidate = detections_path.with_name("objects" + suffix)
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no objects.parquet or objects.csv beside {detections_path}; pass --objects")


def build_requests(detections: pd.DataFrame, objects: pd.DataFrame) -> list[dict[str, Any]]:
    """One request body per detection, in time order, with the object's position attached."""
    missing = [c for c in ("object_id", "mjd", "mag", "mag_err") if c not in detections.columns]
    if missing:
        raise ValueError(f"detections table: missing column(s) {', '.join(missing)}")
    pos_cols = [c for c in OBJECT_FIELDS if c in objects.columns]
    merged = detections.merge(objects[["object_id", *pos_cols]], on="object_id", how="left")
    unplaced = merged["ra"].isna() if "ra" in merged else pd.Series(True, index=merged.index)
    if unplaced.any():
        raise ValueError(f"objects table: no ra/dec for object {merged.loc[unplaced, 'object_id'].iloc[0]!r}")
    merged = merged.sort_values(["mjd", "object_id"], kind="stable")
    columns = [c for c in (*DETECTION_FIELDS, *pos_cols) if c in merged.columns]
    records = merged[columns].to_dict("records")
    # NaN host separations mean "no value given": let the service cross-match instead.
    return [{k: v for k, v in r.items() if not (isinstance(v, float) and v != v)} for r in records]


def replay(
    requests: list[dict[str, Any]],
    client: httpx.Client,
    rate: float = 0.0,
    progress: bool = True,
) -> ReplaySummary:
    """Send ``requests`` through ``POST /classify/batch``; ``rate`` in detections/s (0: unpaced)."""
    summary = ReplaySummary()
    chunk = BATCH_SIZE if rate <= 0 else max(1, min(BATCH_SIZE, int(rate // 10) or 1))
    start = time.perf_counter()
    bar = tqdm(total=len(requests), unit="det", disable=not progress, file=sys.stderr)
    for first in range(0, len(requests), chunk):
        batch = requests[first : first + chunk]
        if rate > 0:  # pace: this chunk may not start before its share of the schedule
            delay = start + first / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        response = client.post("/classify/batch", json={"detections": batch})
        summary.sent += len(batch)
        if response.status_code != 200:
            summary.rejected += len(batch)
            summary.errors.append(f"HTTP {response.status_code}: {response.text[:300]}")
        else:
            for result in response.json()["results"]:
                if result.get("status") == "error" or "probabilities" not in result:
                    summary.rejected += 1
                    summary.errors.append(str(result)[:300])
                else:
                    summary.accepted += 1
                    summary.final[result["object_id"]] = result
        bar.update(len(batch))
    bar.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _print_summary(summary: ReplaySummary, labels: dict[str, str]) -> None:
    print(f"sent {summary.sent} detections in {summary.seconds:.2f} s ({summary.rate:.0f} det/s); "
          f"accepted {summary.accepted}, rejected {summary.rejected}")
    for err in summary.errors[:5]:
        print(f"  error: {err}")
    shown = sorted(summary.final.items())[:50]
    classes = list(shown[0][1]["probabilities"]) if shown else []
    print(f"{'object_id':<28} {'n':>3} {'class':<6}" + "".join(f"{c:>7}" for c in classes) + "  label")
    for object_id, res in shown:
        probs = "".join(f"{res['probabilities'][c]:7.3f}" for c in classes)
        print(f"{object_id:<28} {res['n_detections']:>3} {res['predicted_class']:<6}{probs}  "
              f"{labels.get(object_id, '')}")
    if len(summary.final) > len(shown):
        print(f"... and {len(summary.final) - len(shown)} more objects")
    counts = Counter(r["predicted_class"] for r in summary.final.values())
    print("final classes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if labels:
        scored = [(labels[o], r["predicted_class"]) for o, r in summary.final.items() if o in labels]
        if scored:
            correct = sum(a == b for a, b in scored)
            print(f"agreement with labels: {correct}/{len(scored)}")


def replay_command(args: argparse.Namespace) -> int:
    path = Path(args.file)
    detections = read_table(path)
    objects = read_table(args.objects or _objects_beside(path))
    requests = build_requests(detections, objects)
    labels = dict(zip(objects["object_id"], objects["label"], strict=True)) if "label" in objects else {}
    api_key = args.api_key or os.environ.get("GOTO_API_KEY")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=args.url, timeout=60.0, headers=headers) as client:
        summary = replay(requests, client, rate=args.rate)
    _print_summary(summary, labels)
    return 0 if summary.rejected == 0 else 1
