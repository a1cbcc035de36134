"""Cost against accuracy: Pareto fronts and their hypervolume.

The two objectives are those of the multi-objective samplers (NSGA-II/III): validation accuracy
up, MAdds down. The hypervolume of a cell is the area its front dominates in (MAdds / M, accuracy),
where M is the largest MAdds of any complete trial on that dataset, with the reference point
(MAdds = M, accuracy = 0): a front at 100 % accuracy and zero MAdds would score 1. It is the
objective of multi-objective cells and is shown for every strategy, so single-objective
strategies can be read on the same scale.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from harness_plugins.reporters.plots import pareto_front

__all__ = ["cell_hypervolumes", "hypervolume", "pareto_front"]


def hypervolume(accuracy: np.ndarray, madds: np.ndarray, max_madds: float) -> float:
    """Dominated area of the points' front with reference point (``max_madds``, 0), MAdds scaled by
    ``max_madds``; 0 for no points."""
    accuracy, madds = np.asarray(accuracy, dtype=float), np.asarray(madds, dtype=float)
    ok = np.isfinite(accuracy) & np.isfinite(madds) & (madds <= max_madds)
    if not ok.any() or max_madds <= 0:
        return 0.0
    accuracy, madds = accuracy[ok], madds[ok] / max_madds
    front = pareto_front(accuracy, madds)  # MAdds ascending, accuracy ascending along the front
    levels = np.clip(accuracy[front], 0.0, None)
    steps = np.diff(np.concatenate([[0.0], levels]))
    return float(np.sum((1.0 - madds[front]) * steps))


def cell_hypervolumes(trials: pd.DataFrame, max_madds: float) -> pd.Series:
    """:func:`hypervolume` of each cell's trials (``cell``, ``val_accuracy``, ``madds`` columns),
    indexed by ``cell`` in sorted order."""
    accuracy, madds = trials["val_accuracy"].to_numpy(float), trials["madds"].to_numpy(float)
    volumes = pd.Series({cell: hypervolume(accuracy[rows], madds[rows], max_madds)
                         for cell, rows in trials.groupby("cell").indices.items()}, dtype=float).sort_index()
    return volumes.rename_axis("cell")
