"""The ``autospace-random`` generator: AutoSpace's control. It takes the same reference cell, T, op
set, K, space size and seed as ``autospace`` (the same ``--autospace-*`` options) and draws the
space's cells uniformly among the cells with ``r_H < T`` (:func:`._autospace_cells.draw_eligible`),
training nothing: no data, no network, no alpha.

Why: on NAS-Bench-201 the reference neighbourhood alone is a strong prior (the ResNet cell sits
near the top of the table), so a generated space is only evidence for what alpha learned when it
beats the same number of cells drawn from the same neighbourhood; autospace minus autospace-random
is that difference. Zhou et al. (ICCV 2021) compare against hand-designed spaces only; the control
is ours.

The space: shared-cell, M distinct cells; layer-wise, K distinct cells per position, drawn
independently per position. Its format is AutoSpace's, so one ``load`` rebuilds either.

Common random numbers: a shared AutoSpace space that held fewer than M cells fills up from the same
seeded stream, skipping the cells it already has, so with the same seed its drawn cells are this
control's own draws (whenever more than 2M cells are eligible, so that both draw one at a time
rather than permute an enumerated set; 1,545 at the defaults). Measured at the defaults (M = 200,
nb201 on digits, seeds 0-2): AutoSpace held 22-26 scored and 6-8 unscored cells and drew 168-171,
every one of them in the control's space; the two spaces differ only in the cells alpha chose.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from harness_plugins.generators._autospace_cells import draw_eligible
from harness_plugins.generators._autospace_space import CellSpaceGenerator

from harness.components import GeneratedSpaceState, GenerationRequest

__all__ = ["AutoSpaceRandomGenerator"]


class AutoSpaceRandomGenerator(CellSpaceGenerator):
    """See the module docstring."""

    name = "autospace-random"
    trains_on_images = False

    def generate(self, request: GenerationRequest) -> GeneratedSpaceState:
        template = self.template(request.base)
        rng = np.random.default_rng(request.seed)
        if self.shared_cell:
            lists = [draw_eligible(template, self.threshold, self.space_size, rng)]
        else:
            lists = [draw_eligible(template, self.threshold, self.k, rng) for _ in range(template.positions)]
        cells = [[template.cell_id(c) for c in cell_list] for cell_list in lists]
        details: dict[str, Any] = {
            **self.space_details(template, cells),
            "base": request.base_name,
            "control": "uniform among cells with r_H < T; nothing trained",
            "config": {"k": self.k, "space_size": self.space_size, "threshold": self.threshold},
        }
        return GeneratedSpaceState(space={"cells": cells, "shared": self.shared_cell}, details=details)
