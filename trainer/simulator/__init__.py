"""GOTO-like simulated sky: the embedded default data source of the trainer (SPEC section 3).

``goto-classifier simulate --out DIR`` writes ``detections``, ``objects`` and ``galaxies`` tables
(Parquet or CSV) that :func:`trainer.data.load_tables` reads, plus ``provenance.json``. The model and
how its statistics compare with the paper's are in ``docs/data.md``.
"""

from trainer.simulator.command import simulate_command
from trainer.simulator.generate import (
    CLASS_NAMES,
    DEFAULT_SEED,
    PAPER_CLASS_COUNTS,
    SimulatedSky,
    class_counts,
    simulate,
)

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_SEED",
    "PAPER_CLASS_COUNTS",
    "SimulatedSky",
    "class_counts",
    "simulate",
    "simulate_command",
]
