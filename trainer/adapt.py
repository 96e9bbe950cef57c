"""Apply a :class:`lightcurve.adapters.SurveyAdapter` to whole survey tables (training, evaluation).

The per-light-curve rules live in ``lightcurve.adapters``; this module selects rows of a
:class:`trainer.data.SurveyTables`, bins each object's detections and records what was done (rows and
objects kept, the adapter itself) in ``provenance["adapter"]``. Objects left without detections are
dropped and counted, never silently.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd

from lightcurve.adapters import SurveyAdapter, bin_light_curve
from trainer.data import SurveyTables, derive_detection_ids

__all__ = ["adapt_tables"]

log = logging.getLogger(__name__)


def _start_mask(tables: SurveyTables, adapter: SurveyAdapter) -> np.ndarray:
    column = adapter.start_column
    assert column is not None
    if column not in tables.objects.columns:
        raise ValueError(
            f"adapter start_column {column!r}: not a column of the objects table "
            f"(columns: {', '.join(map(str, tables.objects.columns))})"
        )
    start = pd.to_numeric(tables.objects[column], errors="coerce")
    by_object = pd.Series(start.to_numpy(dtype=np.float64), index=tables.objects["object_id"].to_numpy())
    per_detection = tables.detections["object_id"].map(by_object).to_numpy(dtype=np.float64)
    # An object without a start date keeps all its detections (NaN compares False, so keep explicitly).
    return ~(per_detection + adapter.start_offset_days > tables.detections["mjd"].to_numpy())


def _binned(det: pd.DataFrame, gap_days: float) -> pd.DataFrame:
    rows = []
    for oid, group in det.groupby("object_id", sort=False):
        t, m, e = bin_light_curve(group["mjd"], group["mag"], group["mag_err"], gap_days)
        rows.append(
            pd.DataFrame(
                {
                    "object_id": oid,
                    "mjd": np.round(t, 6),
                    "mag": m,
                    "mag_err": e,
                    "filter": str(group["filter"].iloc[0]),
                }
            )
        )
    out = pd.concat(rows, ignore_index=True) if rows else det.iloc[:0][["object_id", "mjd", "mag", "mag_err"]]
    if "filter" not in out:
        out["filter"] = pd.Series(dtype=str)
    out.insert(1, "detection_id", derive_detection_ids(out["mjd"].to_numpy(), out["filter"].to_numpy(str)))
    return out


def adapt_tables(tables: SurveyTables, adapter: SurveyAdapter) -> SurveyTables:
    """``tables`` with ``adapter`` applied: bands kept, light curves started, detections binned."""
    if adapter.is_identity:
        return tables
    det = tables.detections
    rows_in = len(det)
    keep = np.ones(len(det), dtype=bool)
    if adapter.bands is not None:
        keep &= det["filter"].astype(str).isin(adapter.bands).to_numpy()
    if adapter.start_column is not None:
        keep &= _start_mask(tables, adapter)
    det = det.loc[keep]
    gap = adapter.binning_gap_days
    if gap is not None:
        det = _binned(det, gap)
    det = det.sort_values(["object_id", "mjd", "detection_id"], kind="stable").reset_index(drop=True)
    seen = tables.objects["object_id"].isin(pd.unique(det["object_id"])).to_numpy()
    objects = tables.objects.loc[seen].reset_index(drop=True)
    dropped = tables.objects.loc[~seen]
    if len(dropped):
        log.warning(
            "adapter (%s): %d objects left without detections, dropped", adapter.describe(), len(dropped)
        )
    record = {
        "adapter": adapter.model_dump(mode="json"),
        "description": adapter.describe(),
        "detections_in": rows_in,
        "detections_selected": int(keep.sum()),
        "detections_out": len(det),
        "objects_in": len(tables.objects),
        "objects_out": len(objects),
        "objects_dropped_by_class": {str(k): int(v) for k, v in dropped["label"].value_counts().items()},
    }
    provenance = dict(tables.provenance)
    provenance["adapter"] = record
    provenance["class_counts"] = {str(k): int(v) for k, v in objects["label"].value_counts().items()}
    return dataclasses.replace(tables, detections=det, objects=objects, provenance=provenance)
