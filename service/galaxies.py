"""Loading the galaxy catalogue used for the host-separation context feature."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lightcurve.context import GalaxyCatalog

__all__ = ["load_galaxy_catalog"]


def load_galaxy_catalog(path: Path | None) -> GalaxyCatalog | None:
    """Read a CSV or Parquet table with ``ra`` and ``dec`` columns (degrees); ``None`` if no path.

    Raises ``ValueError`` naming the file and the missing column or bad row.
    """
    if path is None:
        return None
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_parquet(path) if path.suffix.lower() in {".parquet", ".pq"} else pd.read_csv(path)
    except Exception as exc:  # pandas raises many types; the operator needs the file name
        raise ValueError(f"{path}: cannot read galaxy catalogue ({exc})") from exc
    for column in ("ra", "dec"):
        if column not in table.columns:
            raise ValueError(f"{path}: galaxy catalogue has no '{column}' column")
    ra = table["ra"].to_numpy(dtype=np.float64)
    dec = table["dec"].to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}: row {row}: ra/dec must be finite with |dec| <= 90")
    return GalaxyCatalog(ra, dec)
