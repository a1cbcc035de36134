"""The nb201 space: arch strings, the capabilities the NAS algorithms rely on, the model and the supernet."""
from __future__ import annotations

import importlib.metadata

import numpy as np
import optuna
import pytest
import torch
from harness_plugins.spaces import nb201
from harness_plugins.spaces.nb201 import (
    EDGES,
    OPS,
    NB201Space,
    arch_to_string,
    count_madds,
    parse_arch_string,
)
from torch.utils.flop_counter import FlopCounterMode

from harness.components import InputShape
from harness.supernet import Supernet
from harness.testing import SpaceContract

SHAPE = InputShape(3, 8, 8, 10)
OPTIMUM = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models: on a shared 2-core machine intra-op threads made this file ~6x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def space() -> NB201Space:
    return NB201Space(channels=4, cells=1)


def uniform(op: str) -> dict[str, str]:
    return dict.fromkeys(EDGES, op)


def flop_madds(model: torch.nn.Module, shape: InputShape) -> int:
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, shape.channels, shape.height, shape.width))
    return counter.get_total_flops() // 2


def test_arch_string_round_trip_and_standard_format() -> None:
    arch = parse_arch_string(OPTIMUM)
    assert list(arch) == list(EDGES)
    assert arch["3<-0"] == "skip_connect" and arch["2<-1"] == "nor_conv_3x3"
    assert arch_to_string(arch) == OPTIMUM
    assert NB201Space().arch_id(arch) == OPTIMUM


@pytest.mark.parametrize("bad", [
    "", "|none~0|+|none~0|none~1|", "|none~0|+|none~0|none~1|+|none~0|none~1|",
    "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
    "none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "|none0|+|none~0|none~1|+|none~0|none~1|none~2|",
])
def test_parse_rejects_malformed_strings(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_arch_string(bad)


def test_enumerate_gives_15625_unique_ids(space: NB201Space) -> None:
    ids = {space.arch_id(a) for a in space.enumerate()}
    assert len(space.enumerate()) == 15_625 == len(ids)


def test_mutation_changes_exactly_one_edge_to_a_different_op(space: NB201Space) -> None:
    rng = np.random.default_rng(0)
    edges_hit, ops_hit = set(), set()
    for _ in range(500):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        changed = [e for e in EDGES if child[e] != parent[e]]
        assert len(changed) == 1
        assert child[changed[0]] in OPS
        edges_hit.add(changed[0])
        ops_hit.add(child[changed[0]])
    assert edges_hit == set(EDGES) and ops_hit == set(OPS)


def test_sample_is_reproducible_and_covers_every_op(space: NB201Space) -> None:
    a = [space.sample(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(1)
    counts = {op: 0 for op in OPS}
    for _ in range(1000):
        for op in space.sample(rng).values():
            counts[op] += 1
    assert all(1000 < c < 1400 for c in counts.values())  # 6000 draws, 1200 expected each


def test_suggest_lets_the_sampler_choose_every_edge(space: NB201Space) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0))
    trial = study.ask()
    arch = space.suggest(trial)
    assert set(arch) == set(EDGES) and trial.params == arch


def test_encode_is_one_hot_per_edge(space: NB201Space) -> None:
    vec = space.encode(parse_arch_string(OPTIMUM))
    assert vec.shape == (30,) and vec.sum() == 6
    assert vec.reshape(6, 5)[EDGES.index("3<-0"), OPS.index("skip_connect")] == 1


def test_graph_without_none_is_npenas_wiring(space: NB201Space) -> None:
    adj, feats = space.graph(uniform("nor_conv_3x3"))
    expected = np.zeros((8, 8), dtype=np.int8)
    for src, dst in [(0, 1), (0, 2), (0, 3), (1, 4), (1, 5), (2, 6), (4, 6), (3, 7), (5, 7), (6, 7)]:
        expected[src, dst] = 1
    assert (adj == expected).all()
    labels = [nb201.GRAPH_LABELS[i] for i in feats.argmax(1)]
    assert labels == ["input"] + ["nor_conv_3x3"] * 6 + ["output"]
    assert (feats.sum(1) == 1).all()


def test_graph_removes_none_nodes_and_pads_with_isolate(space: NB201Space) -> None:
    arch = uniform("nor_conv_3x3") | {"1<-0": "none", "3<-1": "none"}
    adj, feats = space.graph(arch)
    labels = [nb201.GRAPH_LABELS[i] for i in feats.argmax(1)]
    # kept op-nodes (NPENAS order 2<-0, 3<-0, 2<-1, 3<-2), then two isolates, then the output
    assert labels == ["input"] + ["nor_conv_3x3"] * 4 + ["isolate", "isolate", "output"]
    assert "none" not in labels
    edges = {(int(i), int(j)) for i, j in zip(*adj.nonzero())}
    # input->2<-0, input->3<-0, 2<-0->3<-2, 2<-1->3<-2, 3<-0->out, 3<-2->out; 2<-1 lost its input
    assert edges == {(0, 1), (0, 2), (1, 4), (3, 4), (2, 7), (4, 7)}
    assert adj[5:7].sum() == 0 and adj[:, 5:7].sum() == 0  # isolate nodes have no edges


def test_build_runs_forward_for_random_archs(space: NB201Space) -> None:
    rng = np.random.default_rng(0)
    x = torch.randn(2, 3, 8, 8)
    for _ in range(5):
        model = space.build(space.sample(rng), SHAPE)
        assert model(x).shape == (2, 10)
    model = space.build(uniform("none"), SHAPE)  # a cell with no path still yields logits
    assert model(x).shape == (2, 10)


def test_madds_differ_by_op_as_expected(space: NB201Space) -> None:
    madds = {op: flop_madds(space.build(uniform(op), SHAPE), SHAPE) for op in OPS}
    assert madds["none"] == madds["skip_connect"] == madds["avg_pool_3x3"]  # no convs in the cell
    per_edge_1x1 = (madds["nor_conv_1x1"] - madds["none"]) / 6
    per_edge_3x3 = (madds["nor_conv_3x3"] - madds["none"]) / 6
    assert per_edge_1x1 > 0 and per_edge_3x3 == 9 * per_edge_1x1
    rng = np.random.default_rng(1)
    for arch in [space.sample(rng) for _ in range(3)] + [uniform(op) for op in OPS]:
        assert flop_madds(space.build(arch, SHAPE), SHAPE) == count_madds(arch, SHAPE, 4, 1)[0]


def test_official_size_madds_match_nas_bench_201() -> None:
    cifar = InputShape(3, 32, 32, 10)
    assert count_madds(uniform("none"), cifar)[0] == pytest.approx(7.78e6, rel=1e-3)
    assert count_madds(uniform("nor_conv_3x3"), cifar)[0] == pytest.approx(220.11e6, rel=1e-4)


def test_factory_reads_size_options() -> None:
    space = nb201._factory({"nb201_channels": 8, "nb201_cells": 2})
    assert (space.channels, space.cells) == (8, 2)
    default = nb201._factory({})
    assert (default.channels, default.cells) == (16, 5)


def test_supernet_children_share_parameters(space: NB201Space) -> None:
    net = space.supernet(SHAPE)
    assert isinstance(net, Supernet) and [d for d, _ in net.decisions()] == list(EDGES)
    a = uniform("nor_conv_3x3")
    b = a | {"1<-0": "nor_conv_1x1"}
    x = torch.randn(2, 3, 8, 8)
    assert net(x, a).shape == net(x, b).shape == (2, 10)
    # the same op on the same edge is one set of tensors for every child
    assert all(p is q for p, q in zip(net.op_parameters("2<-1", "nor_conv_3x3"),
                                      net.op_parameters("2<-1", "nor_conv_3x3")))
    used = {id(p) for p in net.op_parameters("2<-1", "nor_conv_3x3")}
    net.zero_grad()
    net(x, a).sum().backward()
    grads = {id(p) for p in net.parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert used <= grads
    assert not {id(p) for p in net.op_parameters("1<-0", "nor_conv_1x1")} & grads  # b's op, unused by a
    assert not {id(p) for p in net.op_parameters("1<-0", "nor_conv_1x1")} & used
    assert net.op_parameters("1<-0", "skip_connect") == []
    with pytest.raises(KeyError):
        net.op_parameters("1<-0", "conv")


def test_supernet_mixed_forward_and_expected_madds(space: NB201Space) -> None:
    net = space.supernet(SHAPE).eval()
    arch = parse_arch_string(OPTIMUM)
    one_hot = {e: torch.nn.functional.one_hot(torch.tensor(OPS.index(arch[e])), 5).float() for e in EDGES}
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(net.forward_mixed(x, one_hot), net(x, arch), atol=1e-5)
    assert float(net.expected_madds(one_hot)) == pytest.approx(flop_madds(space.build(arch, SHAPE), SHAPE))
    alpha = {e: torch.zeros(5, requires_grad=True) for e in EDGES}
    probs = {e: torch.softmax(a, 0) for e, a in alpha.items()}
    net.expected_madds(probs).backward()
    grad = alpha["1<-0"].grad
    assert grad is not None
    g = dict(zip(OPS, grad.tolist()))
    assert g["nor_conv_3x3"] > g["nor_conv_1x1"] > g["none"] == g["skip_connect"] == g["avg_pool_3x3"]
    out = net.forward_mixed(x, probs)
    assert out.shape == (2, 10)


def test_registered_through_its_entry_point() -> None:
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="harness")}
    assert names["nb201"] == "harness_plugins.spaces.nb201"
    (spec,) = nb201.harness_spaces()
    assert spec.name == "nb201" and isinstance(spec.factory({}), NB201Space)


class TestNB201Contract(SpaceContract):
    """The shipped space contract (harness.testing), through the real plugin loading."""

    space_name = "nb201"
    shape = InputShape(3, 8, 8, 10)
    options = {"nb201_channels": 4, "nb201_cells": 1}
