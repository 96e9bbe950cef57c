"""How much the simulated sky tells apart, without the RNN: a gradient-boosted tree baseline.

Fits scikit-learn's ``HistGradientBoostingClassifier`` (class-weighted as the paper's alpha_j) on the
model inputs of the training split (the 30 normalised steps flattened, NaN beyond a light curve's end,
a few summaries: mean, standard deviation and range of magnitude, span, median error, length; and the
context), then scores the test split with at most 1, 3, 10 and 30 detections (Hand & Till AUC, recall
at argmax). A diagnostic for the GRU's numbers, not a product model.

Usage::

    python benchmarks/sim_separability.py data/sim
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from trainer.data import CLASS_NAMES, load_tables
from trainer.dataset import DataOptions, prepare_training_data


def features(part, max_steps: int = 30) -> np.ndarray:
    series = part.series.astype(np.float64)
    n = np.minimum(part.n_valid, max_steps)
    series[np.arange(series.shape[1])[None, :] >= n[:, None]] = np.nan
    with np.errstate(all="ignore"):
        mag = series[:, :, 1]
        summary = np.column_stack([
            np.nanmean(mag, 1), np.nanstd(mag, 1), np.nanmax(mag, 1) - np.nanmin(mag, 1),
            np.nansum(series[:, :, 0], 1), np.nanmedian(series[:, :, 2], 1), n,
        ])
    return np.column_stack([series.reshape(len(series), -1), summary, part.context])


def main(data_dir: str) -> None:
    t0 = time.perf_counter()
    data = prepare_training_data(load_tables(data_dir), DataOptions(seed=42), CLASS_NAMES)
    train, test = data.part("train"), data.part("test")
    weights = len(train.labels) / (3 * np.bincount(train.labels, minlength=3))
    model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, random_state=0)
    model.fit(features(train), train.labels, sample_weight=weights[train.labels])
    for k in (1, 3, 10, 30):
        p = model.predict_proba(features(test, k))
        recall = [round(float(np.mean(p[test.labels == c].argmax(1) == c)), 3) for c in range(3)]
        print(f"at most {k:2d} detections: AUC {roc_auc_score(test.labels, p, multi_class='ovo'):.4f}  "
              f"recall VS/SN/AGN {recall}")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/sim")
