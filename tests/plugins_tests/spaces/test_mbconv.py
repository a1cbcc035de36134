"""The mbconv space: decisions, edits, encodings, models, and its weight-sharing supernet."""
from __future__ import annotations

import importlib.metadata

import numpy as np
import optuna
import pytest
import torch
from harness_plugins.spaces import mbconv
from harness_plugins.spaces._mbconv_ops import measure_madds
from harness_plugins.spaces.mbconv import MBConvSpace

from harness.components import InputShape
from harness.errors import UsageError
from harness.supernet import Supernet
from harness.testing import SpaceContract

DIGITS = InputShape(1, 8, 8, 10)
CIFAR = InputShape(3, 32, 32, 100)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions on a loaded 2-core machine run ~100x slower with two intra-op threads
    (OpenMP spin-waiting) than with one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def space() -> MBConvSpace:
    return MBConvSpace()


@pytest.fixture(scope="module")
def supernet(space: MBConvSpace) -> Supernet:
    torch.manual_seed(0)
    return space.supernet(DIGITS)


def one_hot(space: MBConvSpace, arch: dict) -> dict[str, torch.Tensor]:
    return {name: torch.nn.functional.one_hot(torch.tensor(list(opts).index(arch[name])), len(opts)).float()
            for name, opts in space.decisions()}


def test_decisions_offer_skip_only_where_shape_is_kept(space: MBConvSpace) -> None:
    decisions = dict(space.decisions())
    assert list(decisions) == [f"layer_{i}" for i in range(6)]
    for i, options in enumerate(decisions.values()):
        assert ("skip" in options) == (i not in (2, 4))  # layers 2 and 4 halve resolution, double width
        assert len(options) == (6 if i in (2, 4) else 7)
    for layer in space.plan(CIFAR).layers:
        assert ("skip" in layer.options) == layer.keeps_shape


def test_mutate_changes_exactly_one_layer_to_a_different_option(space: MBConvSpace) -> None:
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    for _ in range(300):
        child = space.mutate(arch, rng)
        changed = [k for k in arch if arch[k] != child[k]]
        assert len(changed) == 1
        assert child[changed[0]] in dict(space.decisions())[changed[0]]
        arch = child


def test_ids_and_encodings_are_canonical(space: MBConvSpace) -> None:
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(50)]
    for arch in archs:
        assert space.arch_id(arch) == "-".join(arch[f"layer_{i}"] for i in range(6))
        assert space.arch_id(dict(reversed(list(arch.items())))) == space.arch_id(arch)
        code = space.encode(arch)
        assert code.shape == (40,) and code.sum() == 6
    ids = {space.arch_id(a) for a in archs}
    codes = {space.encode(a).tobytes() for a in archs}
    assert len(ids) == len(codes)
    with pytest.raises(ValueError, match="layer_2"):
        space.arch_id({**archs[0], "layer_2": "skip"})


def test_suggest_lets_the_sampler_choose_every_layer(space: MBConvSpace) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    arch = space.suggest(trial)
    assert set(arch) == set(trial.params) and space.arch_id(arch)


@pytest.mark.parametrize("shape", [DIGITS, CIFAR])
def test_children_build_and_run(space: MBConvSpace, shape: InputShape) -> None:
    rng = np.random.default_rng(2)
    for arch in [space.sample(rng), {name: opts[-1] for name, opts in space.decisions()}]:
        model = space.build(arch, shape)
        out = model(torch.randn(2, shape.channels, shape.height, shape.width))
        assert out.shape == (2, shape.num_classes)
    with torch.device("meta"):
        assert space.build(arch, shape)(torch.empty(1, shape.channels, shape.height, shape.width)).is_meta


def test_expected_madds_at_one_hot_is_the_childs_measured_madds(space: MBConvSpace, supernet: Supernet) -> None:
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(4)] + [{n: o[0] for n, o in space.decisions()}]
    for arch in archs:
        with torch.device("meta"):
            child = space.build(arch, DIGITS)
        assert supernet.expected_madds(one_hot(space, arch)).item() == pytest.approx(measure_madds(child, (1, 8, 8)))


def test_expected_madds_is_differentiable(space: MBConvSpace, supernet: Supernet) -> None:
    logits = {name: torch.zeros(len(opts), requires_grad=True) for name, opts in space.decisions()}
    supernet.expected_madds({n: torch.softmax(v, 0) for n, v in logits.items()}).backward()
    grad = logits["layer_0"].grad
    costs = supernet.option_madds("layer_0").float()
    # d/dl_k sum_j p_j M_j = p_k (M_k - E[M]): cheaper-than-average options get negative gradients
    assert torch.allclose(grad, (costs - costs.mean()) / len(costs), rtol=1e-4)
    assert grad[-1] < 0 < grad[-2]  # skip is the cheapest, k7_e6 the dearest


def test_single_path_and_one_hot_mixture_agree(space: MBConvSpace, supernet: Supernet) -> None:
    arch = space.sample(np.random.default_rng(4))
    supernet.eval()
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(supernet(x, arch), supernet.forward_mixed(x, one_hot(space, arch)), atol=1e-5)
    supernet.train()


def test_children_sharing_an_op_share_its_parameter_tensors(space: MBConvSpace) -> None:
    torch.manual_seed(0)
    net = space.supernet(DIGITS)
    base = {name: opts[0] for name, opts in space.decisions()}
    a = {**base, "layer_3": "k5_e6"}
    b = {**base, "layer_3": "k7_e3"}  # shares every layer except layer_3 with a
    used: dict[str, list[int]] = {"a": [], "b": []}
    for child, arch in (("a", a), ("b", b)):
        hooks = [m.register_forward_hook(lambda mod, i, o, c=child: used[c].append(id(mod)))
                 for ops in net.choices for m in ops.values()]
        net(torch.randn(2, 1, 8, 8), arch)
        for h in hooks:
            h.remove()
    shared = net.op_parameters("layer_1", base["layer_1"])
    assert id(net.choices[1][base["layer_1"]]) in used["a"] and id(net.choices[1][base["layer_1"]]) in used["b"]
    assert all(p is q for p, q in zip(shared, net.op_parameters("layer_1", base["layer_1"])))
    assert shared and not set(map(id, shared)) & set(map(id, net.op_parameters("layer_1", "k5_e3")))

    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    net.eval()
    before_b = net(x, b).detach().clone()
    shared_before = [p.detach().clone() for p in shared]
    only_b = [p.detach().clone() for p in net.op_parameters("layer_3", "k7_e3")]
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(net(x, a), y).backward()
    opt.step()
    assert any(not torch.equal(p, q) for p, q in zip(shared, shared_before))  # a's step moved the shared op
    assert all(torch.equal(p, q) for p, q in zip(net.op_parameters("layer_3", "k7_e3"), only_b))
    net.eval()
    assert not torch.allclose(net(x, b), before_b)  # so b sees a's training


def test_plugin_is_registered_and_validates_options() -> None:
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="harness")}
    assert names["mbconv"] == "harness_plugins.spaces.mbconv"
    (spec,) = mbconv.harness_spaces()
    built = spec.factory({"mbconv_layers": 4, "mbconv_width": 8})
    assert len(built.decisions()) == 4 and built.capabilities >= {"supernet", "decisions", "mutate"}
    with pytest.raises(UsageError, match="mbconv-layers"):
        spec.factory({"mbconv_layers": 2, "mbconv_width": 8})


class TestMBConvContract(SpaceContract):
    """The shipped space contract kit, through the real plugin machinery."""

    space_name = "mbconv"
    shape = DIGITS
    options = {"mbconv_layers": 4, "mbconv_width": 8}
