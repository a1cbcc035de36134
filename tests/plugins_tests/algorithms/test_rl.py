"""The rl algorithm: REINFORCE arithmetic, a toy bandit, history replay and ENAS shared mode."""
from __future__ import annotations

import importlib.metadata
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from _cell_ws import WSCell, digits_split
from harness_plugins.algorithms import rl
from harness_plugins.algorithms._controller import Controller, Reinforce
from harness_plugins.algorithms._enas_shared import EnasConfig
from harness_plugins.algorithms.rl import RLAlgorithm
from harness_plugins.spaces.mbconv import MBConvSpace

from harness.errors import UsageError

BANDIT = [(f"d{i}", list(range(4))) for i in range(3)]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a loaded 2-core machine run far faster with one intra-op thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def controller(seed: int = 0) -> Controller:
    torch.manual_seed(seed)
    return Controller(BANDIT)


def log_prob(c: Controller, arch: dict) -> float:
    with torch.no_grad():
        return c(actions=c.to_actions(arch)).log_prob.item()


def test_controller_constants() -> None:
    c = controller()
    assert c.lstm.hidden_size == 64 and isinstance(c.lstm, torch.nn.LSTMCell)
    r = Reinforce(c)
    assert r.optimizer.defaults["lr"] == 0.0035 and r.baseline_decay == 0.99 and r.entropy_weight == 1e-4


@pytest.mark.parametrize("reward, direction", [(1.0, 1), (0.0, -1)])
def test_one_step_follows_the_baseline_formula_and_the_reinforce_sign(reward: float, direction: int) -> None:
    c = controller()
    arch = c.sample(torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = c(actions=c.to_actions(arch))
    r = Reinforce(c, baseline=0.5)
    stats = r.update(arch, reward)
    b = 0.5 - (1 - 0.99) * (0.5 - reward)  # updated first, then used in the advantage (ENAS's order)
    assert r.baseline == stats.baseline == pytest.approx(b, abs=1e-15)
    assert stats.advantage == pytest.approx(reward - b)
    assert stats.loss == pytest.approx(-out.log_prob.item() * (reward - b) - 1e-4 * out.entropy.item(), rel=1e-6)
    after = log_prob(c, arch)
    assert (after - out.log_prob.item()) * direction > 0  # R > b: more likely; R < b: less likely


def test_baseline_starts_at_the_first_reward() -> None:
    r = Reinforce(controller())
    stats = r.update({"d0": 0, "d1": 0, "d2": 0}, 0.8)
    assert r.baseline == 0.8 and stats.advantage == 0.0
    r.update({"d0": 0, "d1": 0, "d2": 0}, 0.6)
    assert r.baseline == pytest.approx(0.8 - 0.01 * (0.8 - 0.6))


def test_controller_finds_the_rewarded_arm_of_a_bandit() -> None:
    target = {"d0": 1, "d1": 2, "d2": 3}  # one of 64 architectures
    c = controller(0)
    r = Reinforce(c)
    g = torch.Generator().manual_seed(0)
    for samples in range(1, 501):
        arch = c.sample(g)
        r.update(arch, 1.0 if arch == target else 0.2)
        if np.exp(log_prob(c, target)) > 0.5:
            break
    assert np.exp(log_prob(c, target)) > 0.5, "controller did not concentrate on the rewarded arm"
    assert c.most_probable() == target
    assert samples <= 500


def _trial(number: int) -> SimpleNamespace:
    return SimpleNamespace(number=number)


def test_child_mode_replays_history_deterministically() -> None:
    space = MBConvSpace(num_layers=3, width=4)
    cell = WSCell(space, None, seed=3)
    rng = np.random.default_rng(0)
    first = RLAlgorithm("child")
    assert first.propose(_trial(0), cell) == RLAlgorithm("child").propose(_trial(0), cell)
    for n in range(6):
        arch = first.propose(_trial(n), cell)
        assert space.arch_id(arch)
        cell.add(n, arch, float(rng.uniform(0.5, 1.0)), "pruned" if n == 4 else "complete")
    cached = first.propose(_trial(6), cell)
    assert first.replay(cell).replayed == [0, 1, 2, 3, 4, 5]
    fresh = RLAlgorithm("child")
    assert fresh.propose(_trial(6), cell) == cached
    for p, q in zip(first.replay(cell).controller.parameters(), fresh.replay(cell).controller.parameters()):
        assert torch.equal(p, q)
    # another process finishes an earlier trial late: the replay restarts in trial order
    cell.entries = [e for e in cell.entries if e.number != 2]
    late = RLAlgorithm("child")
    late.propose(_trial(7), cell)
    cell.add(2, space.sample(rng), 0.9)
    late.propose(_trial(7), cell)
    assert late.replay(cell).replayed == [0, 1, 2, 3, 4, 5]
    rebuilt = RLAlgorithm("child").replay(cell).controller
    for p, q in zip(late.replay(cell).controller.parameters(), rebuilt.parameters()):
        assert torch.equal(p, q)


def test_shared_mode_searches_once_and_proposes_the_derived_child() -> None:
    space = MBConvSpace(num_layers=3, width=8)
    cell = WSCell(space, digits_split(max_per_class=20), seed=1)
    algo = RLAlgorithm("shared", EnasConfig(epochs=2, controller_steps=5, batch_size=32, derive_samples=4))
    algo.prepare(cell)
    algo.prepare(cell)  # a resumed cell does not search again
    assert cell.data_calls == 1 and len(cell.costs) == 1
    seconds, details = cell.costs[0]
    arch = algo.propose(_trial(0), cell)
    assert seconds > 0 and details["mode"] == "shared" and details["arch"] == arch
    assert space.arch_id(arch) == details["arch_id"]
    assert 0.0 <= details["shared_val_accuracy"] <= 1.0 and 0.0 <= details["skip_fraction"] <= 1.0
    assert details["controller_updates"] == 10 and details["architectures_evaluated"] == 15
    assert RLAlgorithm("shared").propose(_trial(1), cell) == arch  # from the cell state, no search


def test_shared_mode_needs_a_supernet_and_options_are_checked() -> None:
    class NoSupernet(MBConvSpace):
        capabilities = frozenset({"decisions"})

    assert RLAlgorithm("shared").incompatible(NoSupernet(), None) == "space lacks supernet (needed by --rl-mode shared)"
    assert RLAlgorithm("child").incompatible(NoSupernet(), None) is None
    (spec,) = rl.harness_algorithms()
    with pytest.raises(UsageError, match="rl-mode"):
        spec.factory({"rl_mode": "both"})
    assert spec.factory({"rl_mode": "shared", "rl_epochs": 1}).config.epochs == 1
    assert importlib.metadata.entry_points(group="harness")["rl"].value == "harness_plugins.algorithms.rl"
