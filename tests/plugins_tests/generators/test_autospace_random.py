"""The control ``autospace-random``: cells drawn uniformly within r_H < T of the reference (checked
by chi-square and coverage over many seeds on small eligible sets), nothing trained (no torch at
all), AutoSpace's options and stored format, and the contract kit."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from typing import ClassVar

import numpy as np
import pytest
from harness_plugins.generators import autospace
from harness_plugins.generators._autospace_cells import (
    adjacency,
    draw_eligible,
    eligible_cells,
    eligible_count,
    hamming_ratio,
)
from harness_plugins.generators._layerwise import LayerwiseSpace
from harness_plugins.spaces.nb201 import NB201Space
from scipy.stats import chisquare

from harness.components import GenerationRequest, InputShape
from harness.testing import GeneratorContract

BASE = NB201Space(channels=4, cells=1)
SHAPE = InputShape(3, 8, 8, 10)


def parsed(*argv: str) -> dict:
    parser = argparse.ArgumentParser()
    autospace.harness_addoption(parser)
    return vars(parser.parse_args(list(argv)))


def control(*argv: str):
    (spec,) = [s for s in autospace.harness_generators() if s.name == "autospace-random"]
    options = parsed(*argv)
    return spec.factory(options), options


def generate(seed: int, *argv: str):
    gen, options = control(*argv)
    return gen.generate(GenerationRequest(BASE, "nb201", "nb201-cifar10", None, SHAPE, seed, "cpu", options))


@pytest.mark.parametrize("threshold, space_size, seeds", [
    ("0.1", "4", 650),  # 13 eligible cells (the reference + 6 edges x 2 other ops), drawn by rejection
    ("0.1", "8", 400),  # 8 of 13: few left, drawn from the enumerated set
    ("0.2", "4", 1500),  # 73 eligible (d <= 2 edits), drawn by rejection
])
def test_cells_are_drawn_uniformly_among_those_within_t(threshold, space_size, seeds) -> None:
    argv = ("--autospace-shared-cell", "--autospace-ops", "skip_connect,nor_conv_3x3",
            "--autospace-threshold", threshold, "--autospace-space-size", space_size)
    gen, _ = control(*argv)
    template = gen.template(BASE)
    eligible = {template.cell_id(c) for c in eligible_cells(template, float(threshold))}
    assert len(eligible) == eligible_count(template, float(threshold)) == {"0.1": 13, "0.2": 73}[threshold]
    counts: Counter = Counter()
    for seed in range(seeds):
        (cells,) = generate(seed, *argv).space["cells"]
        assert len(cells) == len(set(cells)) == int(space_size)
        counts.update(cells)
    # coverage: every eligible cell turns up, and nothing else does
    assert set(counts) == eligible
    # uniform: each cell is in a space as often as any other (inclusion counts of draws without
    # replacement vary less than multinomial counts, so this p-value is conservative). A draw
    # uniform over distances instead of cells puts the reference in nearly every space: p ~ 0.
    observed = [counts[c] for c in sorted(eligible)]
    assert chisquare(observed).pvalue > 1e-3, observed


def test_a_draw_uniform_over_cells_is_not_one_uniform_over_distances() -> None:
    # the stratified sampler itself, with the nb201 op set: the share of cells d edits away
    # follows C(6, d) 4^d (1, 24, 240, 1280 of 1545 at T = 0.3), not 1/4 each
    template = BASE.cell_template()
    rng = np.random.default_rng(0)
    drawn = [cell for _ in range(200) for cell in draw_eligible(template, 0.3, 20, rng)]
    edits = Counter(sum(a != b for a, b in zip(c, template.reference)) for c in drawn)
    shares = np.array([edits[d] for d in range(4)]) / len(drawn)
    assert np.allclose(shares, np.array([1, 24, 240, 1280]) / 1545, atol=0.02), shares


def test_the_control_trains_nothing_and_never_imports_torch() -> None:
    code = """
import sys
from harness_plugins.generators import autospace
from harness_plugins.spaces.nb201 import NB201Space
from harness.components import GenerationRequest, InputShape
(spec,) = [s for s in autospace.harness_generators() if s.name == "autospace-random"]
options = {"autospace_shared_cell": True}
gen = spec.factory(options)
state = gen.generate(GenerationRequest(NB201Space(), "nb201", "t", None, InputShape(3, 32, 32, 10), 0, "cpu", options))
assert "torch" not in sys.modules, "the control's generation imported torch"
space = gen.load(NB201Space(), state.space)  # models are built later, by the trials
assert len(space.options[0]) == 200 and state.details["space_size"] == 200, state.details
assert "torch" not in sys.modules, "loading the space imported torch"
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_same_options_and_format_as_autospace() -> None:
    argv = ("--autospace-shared-cell", "--autospace-space-size", "30")
    state = generate(0, *argv)
    stored = json.loads(json.dumps({"space": state.space, "details": state.details}))
    assert stored["space"]["shared"] is True and len(stored["space"]["cells"][0]) == 30
    details = stored["details"]
    assert details["space_size"] == 30 and type(details["space_size"]) is int and details["eligible_cells"] == 1545
    assert details["threshold"] == 0.3 and details["reference"] == BASE.cell_template().cell_id(
        BASE.cell_template().reference)
    assert "space_note" not in details
    # autospace's own load reads it: the same space class, the same architectures
    (spec,) = [s for s in autospace.harness_generators() if s.name == "autospace"]
    space = spec.factory(parsed(*argv)).load(BASE, stored["space"])
    assert isinstance(space, LayerwiseSpace) and space.shared
    arch = space.sample(np.random.default_rng(0))
    assert space.arch_id(arch) in stored["space"]["cells"][0]  # a NAS-Bench-201 string: tables score it
    ref = adjacency(BASE.cell_template().reference, BASE.cell_template())
    assert all(hamming_ratio(adjacency(BASE.cell_template().parse(c), BASE.cell_template()), ref) < 0.3
               for c in stored["space"]["cells"][0])
    # deterministic per seed, different across seeds
    assert generate(0, *argv).space == state.space and generate(1, *argv).space != state.space


def test_layer_wise_control_draws_k_cells_per_position() -> None:
    state = generate(3, "--autospace-k", "3")
    cells = state.space["cells"]
    assert state.space["shared"] is False and len(cells) == BASE.cell_template().positions == 3
    assert all(len(ids) == len(set(ids)) == 3 for ids in cells)
    assert state.details["space_size"] == 3 ** 3
    assert len({tuple(ids) for ids in cells}) > 1  # drawn independently per position


def test_fewer_eligible_cells_than_m_fill_the_space_and_say_so() -> None:
    state = generate(0, "--autospace-shared-cell", "--autospace-ops", "skip_connect,nor_conv_3x3",
                     "--autospace-threshold", "0.1", "--autospace-space-size", "20")
    assert len(state.space["cells"][0]) == state.details["space_size"] == state.details["eligible_cells"] == 13
    assert "only 13 cells have r_H < T = 0.1" in state.details["space_note"]


class TestAutoSpaceRandomContract(GeneratorContract):
    generator_name = "autospace-random"
    base_space_name = "nb201"
    options: ClassVar[dict] = {"nb201_channels": 4, "nb201_cells": 1, "autospace_shared_cell": True,
                               "autospace_space_size": 12}


class TestAutoSpaceRandomLayerwiseContract(TestAutoSpaceRandomContract):
    options: ClassVar[dict] = {"nb201_channels": 4, "nb201_cells": 1}
