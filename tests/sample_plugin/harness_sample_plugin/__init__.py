"""An example third-party plugin: one component of four kinds, registered through the
``harness`` entry-point group in this package's ``pyproject.toml``.

- sampler ``sample-random``: Optuna's random sampler (a sampler is passed to Optuna unwrapped);
- dataset ``sample-blobs``: 12x12 grey images of one bright blob whose position is the class;
- algorithm ``sample-hillclimb``: mutate the best architecture so far (needs sample + mutate),
  recording each trial's move in ``trials.csv`` as ``algo.role`` (``init`` or ``neighbour``);
- reporter ``sample-counts``: trial states per cell as JSON; ``--sample-counts-indent`` only
  changes the file's layout, so it is marked execution-only (not part of the run id) and
  ``harness report RUN --sample-counts-indent 4`` re-renders without recomputing.

Its tests (``tests/test_sample_plugin.py``) use only the public kit, :mod:`harness.testing`.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness import hookimpl
from harness.components import (
    AlgorithmSpec,
    DatasetRequest,
    DatasetSpec,
    ImageData,
    ImageDataset,
    Reporter,
    ReporterSpec,
    RunResults,
    SamplerSpec,
    SearchAlgorithm,
)

HARNESS_HOOKSPEC = "1"
__version__ = "0.3.1"


class Blobs(ImageDataset):
    def load(self, request: DatasetRequest) -> ImageData:
        import torch

        g = torch.Generator().manual_seed(0)
        per_class = request.max_per_class or 30

        def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            labels = torch.arange(4).repeat_interleave(n)
            images = torch.randint(0, 60, (len(labels), 1, 12, 12), generator=g, dtype=torch.uint8)
            for i, label in enumerate(labels.tolist()):
                r, c = divmod(label, 2)
                images[i, 0, r * 6 + 1:r * 6 + 5, c * 6 + 1:c * 6 + 5] = 250
            return images, labels

        train_x, train_y = make(per_class)
        test_x, test_y = make(10)
        return ImageData(train_x, train_y, test_x, test_y, ["top-left", "top-right", "bottom-left", "bottom-right"],
                         augment=False)


class HillClimb(SearchAlgorithm):
    requires = frozenset({"sample", "mutate"})

    def propose(self, trial, cell):  # type: ignore[no-untyped-def]
        import numpy as np

        rng = np.random.default_rng([cell.seed, trial.number])
        history = cell.history()
        if not history:
            cell.record_trial_column(trial, "role", "init")
            return cell.space.sample(rng)
        cell.record_trial_column(trial, "role", "neighbour")
        best = max(history, key=lambda h: h.accuracy)
        return cell.space.mutate(best.arch, rng)


class Counts(Reporter):
    def __init__(self, indent: int = 1) -> None:
        self.indent = indent

    def report(self, results: RunResults, out_dir: Path) -> str:
        counts = results.trials.groupby(["cell", "state"]).size().unstack(fill_value=0) if len(results.trials) else {}
        data = {cell: {k: int(v) for k, v in row.items()} for cell, row in counts.iterrows()} if len(counts) else {}
        (out_dir / "sample-counts.json").write_text(json.dumps(data, indent=self.indent))
        return f"sample-counts: {len(data)} cells"


@hookimpl
def harness_addoption(parser) -> None:  # type: ignore[no-untyped-def]
    from harness.config import execution_only

    execution_only(parser.add_argument("--sample-counts-indent", type=int, default=1,
                                       help="JSON indent of sample-counts.json (default 1)"))


@hookimpl
def harness_samplers() -> list[SamplerSpec]:
    import optuna

    return [SamplerSpec(name="sample-random", description="random sampling from a third-party plugin",
                        factory=lambda req: optuna.samplers.RandomSampler(seed=req.seed))]


@hookimpl
def harness_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(name="sample-blobs", description="4-class blob images", factory=lambda options: Blobs())]


@hookimpl
def harness_algorithms() -> list[AlgorithmSpec]:
    return [AlgorithmSpec(name="sample-hillclimb", description="mutate the best so far",
                          factory=lambda options: HillClimb())]


@hookimpl
def harness_reporters() -> list[ReporterSpec]:
    return [ReporterSpec(name="sample-counts", description="trial states per cell",
                         factory=lambda options: Counts(options["sample_counts_indent"]))]
