"""The space AutoSpace outputs: its contract through the kit, every algorithm proposing in it, the
shared-cell space scored by the NAS-Bench-201 table, and the mbcell base space."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from _digits import digits_split
from harness_plugins.algorithms._darts import DartsConfig
from harness_plugins.algorithms._enas_shared import EnasConfig
from harness_plugins.algorithms.gradient import GradientAlgorithm
from harness_plugins.algorithms.npenas import NPENAS
from harness_plugins.algorithms.random_search import RandomSearch
from harness_plugins.algorithms.rea import RegularizedEvolution
from harness_plugins.algorithms.rl import RLAlgorithm
from harness_plugins.generators._layerwise import ENUMERATE_LIMIT, LayerwiseSpace
from harness_plugins.spaces._cell_nets import FixedCellNetwork
from harness_plugins.spaces.mbcell import MBCellSpace
from harness_plugins.spaces.nb201 import RESNET, NB201Space, arch_to_string

from harness.components import InputShape
from harness.measure import madds_of_builder
from harness.supernet import Supernet
from harness.testing import GeneratorContract, SpaceContract, make_cell, run_trials

CELLS = [
    "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
]


def layerwise(shared: bool = False, k: int = 3) -> LayerwiseSpace:
    base = NB201Space(channels=4, cells=1)
    cells = [CELLS[:k]] if shared else [CELLS[:k], CELLS[1:k] + CELLS[:1], CELLS[:k]]
    return LayerwiseSpace(base, cells, shared)


class TestLayerwiseContract(SpaceContract):
    shape: ClassVar[InputShape] = InputShape(1, 8, 8, 10)

    def make_space(self) -> LayerwiseSpace:
        return layerwise()


class TestSharedCellContract(TestLayerwiseContract):
    def make_space(self) -> LayerwiseSpace:
        return layerwise(shared=True)


class TestMBCellContract(SpaceContract):
    space_name = "mbcell"
    shape: ClassVar[InputShape] = InputShape(1, 8, 8, 10)


def test_architectures_put_the_chosen_cell_at_each_position() -> None:
    space = layerwise()
    arch = {"cell_0": CELLS[0], "cell_1": CELLS[0], "cell_2": CELLS[2]}
    shape = InputShape(1, 8, 8, 10)
    # the same cell everywhere is exactly the NAS-Bench-201 network of that cell
    same = {"cell_0": CELLS[0], "cell_1": CELLS[0], "cell_2": CELLS[0]}
    base = NB201Space(channels=4, cells=1)
    assert madds_of_builder(lambda: space.build(same, shape), shape) == madds_of_builder(
        lambda: base.build(RESNET, shape), shape)
    # a cheaper cell at position 2 (4C channels) lowers the MAdds by its conv's cost there
    cheaper = madds_of_builder(lambda: space.build(arch, shape), shape)
    assert cheaper == madds_of_builder(lambda: base.build(RESNET, shape), shape) - 16 * 16 * 9 * 2 * 2
    assert space.arch_id(arch) == "/".join(arch.values())
    assert space.position_cells(arch)[2] == space.template.parse(CELLS[2])


def test_capabilities_decisions_encode_enumerate_graph() -> None:
    space = layerwise()
    assert {"sample", "mutate", "decisions", "encode", "graph", "supernet", "enumerate"} <= space.capabilities
    assert [name for name, _ in space.decisions()] == ["cell_0", "cell_1", "cell_2"]
    assert len(space.enumerate()) == 27 == len({space.arch_id(a) for a in space.enumerate()})
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    child = space.mutate(arch, rng)
    assert sum(arch[n] != child[n] for n in arch) == 1
    adjacency, features = space.graph(arch)
    assert adjacency.shape == (2 + 3 * 6, 2 + 3 * 6) and features.sum() == 2 + 3 * 6
    assert not np.tril(adjacency).any()  # wired forward only: a DAG
    assert all(adjacency[:, j].any() for j in range(1, 20))  # every node but the input has a predecessor
    other = dict(arch, cell_1=[c for c in space.options[1] if c != arch["cell_1"]][0])
    assert not np.array_equal(space.graph(other)[1], features)
    big = LayerwiseSpace(NB201Space(channels=4, cells=5), [CELLS] * 15, False)
    assert 3 ** 15 > ENUMERATE_LIMIT and "enumerate" not in big.capabilities


def test_supernet_follows_the_protocol() -> None:
    space = layerwise()
    shape = InputShape(1, 8, 8, 10)
    net = space.supernet(shape)
    assert isinstance(net, Supernet) and list(net.decisions()) == list(space.decisions())
    x = torch.randn(4, 1, 8, 8)
    arch = space.sample(np.random.default_rng(1))
    assert net(x, arch).shape == (4, 10)
    onehot = {n: torch.tensor([float(o == arch[n]) for o in opts]) for n, opts in space.decisions()}
    torch.testing.assert_close(net.forward_mixed(x, onehot), net(x, arch))
    assert float(net.expected_madds(onehot)) == pytest.approx(madds_of_builder(lambda: space.build(arch, shape), shape))
    # the same (position, edge, op) in two cells of one decision shares its parameters
    a, b = (set(map(id, net.op_parameters("cell_0", c))) for c in CELLS[:2])
    assert a & b and a != b


def accuracy_of(arch_id: str) -> float:
    return (sum(map(ord, arch_id)) % 97) / 97


@pytest.mark.parametrize("algorithm", [RandomSearch(), RegularizedEvolution(population=4, tournament=2),
                                       NPENAS("np", 5, init=4, batch=2, candidates=10), RLAlgorithm("child")])
def test_multi_trial_algorithms_propose_in_the_space(algorithm) -> None:
    space = layerwise()
    assert algorithm.incompatible(space, None) is None
    cell = run_trials(algorithm, space, 8, lambda arch: accuracy_of(space.arch_id(arch)), seed=0)
    history = cell.history()
    assert len(history) == 8 and len({e.arch_id for e in history}) >= 2
    for entry in history:
        assert space.arch_id(entry.arch) == entry.arch_id  # valid architectures of the generated space


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", [
    RLAlgorithm("shared", EnasConfig(epochs=1, controller_steps=3, batch_size=32, derive_samples=2)),
    GradientAlgorithm(DartsConfig(epochs=1, batch_size=32, madds_lambda=0.1)),
])
def test_one_shot_algorithms_search_the_space_on_digits(algorithm) -> None:
    space = layerwise()
    cell = make_cell(space, algorithm, lambda arch: 0.5, data=digits_split(max_per_class=20), seed=0)
    assert cell.run(1) == "done"
    assert len(cell.search_costs()) == 1
    (entry,) = cell.history()
    assert space.arch_id(entry.arch) == entry.arch_id


def test_shared_cell_space_is_scored_by_the_nb201_table(tmp_path) -> None:
    from harness_plugins.datasets._nb201_synthetic import write_synthetic_table
    from harness_plugins.datasets.nb201_table import NB201Table, load_table

    path = write_synthetic_table(tmp_path / "nb201.csv")
    table = load_table(path)["CIFAR10TestAccuracy200Epochs"]
    space = layerwise(shared=True)
    evaluator = NB201Table("nb201-cifar10", str(path)).open(None)
    for algorithm in (RandomSearch(), RLAlgorithm("child")):
        cell = run_trials(algorithm, space, 3, evaluator, seed=0)
        assert len(cell.history()) == 3
        for entry in cell.history():
            assert entry.arch_id in CELLS  # the arch id is the NAS-Bench-201 string...
            assert entry.accuracy == pytest.approx(table[entry.arch_id] / 100)  # ...and the table's row


class TestAutoSpaceOnNB201(GeneratorContract):
    generator_name = "autospace"
    base_space_name = "nb201"
    options: ClassVar[dict] = {"nb201_channels": 4, "nb201_cells": 1, "autospace_iterations": 4,
                               "autospace_warmup": 1, "autospace_batch_size": 16}


class TestAutoSpaceSharedCellOnNB201(TestAutoSpaceOnNB201):
    options: ClassVar[dict] = {**TestAutoSpaceOnNB201.options, "autospace_shared_cell": True}


def test_mbcell_cells_build_the_backbone_and_the_reference_is_mobilenetv2s_block() -> None:
    space = MBCellSpace(width=8, cells=1)
    template = space.cell_template()
    assert template.cell_id(template.reference) == "|k3_e6~0|+|zero~0|zero~1|+|skip~0|skip~1|zero~2|"
    shape = InputShape(1, 8, 8, 10)
    arch = dict(zip([f"{t}<-{f}" for t, f in template.edges], template.reference))
    model = space.build(arch, shape)
    assert isinstance(model, FixedCellNetwork) and model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    # every cell costs what its MBConv costs: the zero edges and skips are free
    backbone = space.cell_backbone(shape)
    assert madds_of_builder(lambda: space.build(arch, shape), shape) == pytest.approx(
        backbone.fixed_madds() + sum(backbone.op_madds(p, "k3_e6") for p in range(3)))
    net = space.supernet(shape)
    onehot = {n: torch.tensor([float(o == arch[n]) for o in opts]) for n, opts in net.decisions()}
    assert float(net.expected_madds(onehot)) == pytest.approx(madds_of_builder(lambda: space.build(arch, shape), shape))
    assert arch_to_string(RESNET) == NB201Space().cell_template().cell_id(NB201Space().cell_template().reference)
