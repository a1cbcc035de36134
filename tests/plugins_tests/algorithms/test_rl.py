"""The rl algorithm: REINFORCE arithmetic, a toy bandit, history replay and ENAS shared mode."""
from __future__ import annotations

import importlib.metadata
import threading
import time

import numpy as np
import optuna
import pytest
import torch
from _digits import digits_split
from harness_plugins.algorithms import rl
from harness_plugins.algorithms._controller import Controller, Reinforce
from harness_plugins.algorithms._enas_shared import EnasConfig
from harness_plugins.algorithms.rl import RLAlgorithm
from harness_plugins.spaces.mbconv import MBConvSpace

from harness.errors import UsageError
from harness.testing import make_cell, run_trials

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


def test_child_mode_replays_history_deterministically() -> None:
    space = MBConvSpace(num_layers=3, width=4)
    rng = np.random.default_rng(0)
    accuracy: dict[str, float] = {}
    gate = threading.Event()

    def score(arch: dict) -> float:
        if threading.current_thread() is not threading.main_thread():
            assert gate.wait(60), "the test never released the other worker"
        return accuracy.setdefault(space.arch_id(arch), float(rng.uniform(0.5, 1.0)))

    first = RLAlgorithm("child")
    cell = run_trials(first, space, 6, score, seed=3)
    assert first.replay(cell.context).replayed == [0, 1, 2, 3, 4, 5]
    trial = cell.ask()
    fresh = RLAlgorithm("child")
    assert fresh.propose(trial, cell.context) == first.propose(trial, cell.context)
    for p, q in zip(first.replay(cell.context).controller.parameters(),
                    fresh.replay(cell.context).controller.parameters()):
        assert torch.equal(p, q)
    cell.study.tell(trial, state=optuna.trial.TrialState.FAIL)
    # another worker's trial finishes late, after a later one: the replay restarts in trial order
    other = make_cell(space, RLAlgorithm("child"), score, seed=3, storage=cell.storage)
    worker = threading.Thread(target=other.run, args=(1,), kwargs={"worker_index": 1})
    worker.start()
    try:  # the other worker is released whatever fails here (else its thread errs in a later test)
        deadline = time.monotonic() + 120
        while not any("start" in t.user_attrs
                      for t in cell.study.get_trials(states=(optuna.trial.TrialState.RUNNING,))):
            assert worker.is_alive() and time.monotonic() < deadline, "the other worker never started its trial"
            worker.join(0.05)
        late = RLAlgorithm("child")
        cell.run(1, algorithm=late)
        running = [t.number for t in cell.study.get_trials(states=(optuna.trial.TrialState.RUNNING,))]
        assert late.replay(cell.context).replayed == [0, 1, 2, 3, 4, 5, running[0] + 1]
    finally:
        gate.set()
        worker.join()
    assert late.replay(cell.context).replayed == [0, 1, 2, 3, 4, 5, running[0], running[0] + 1]
    rebuilt = RLAlgorithm("child").replay(cell.context).controller
    for p, q in zip(late.replay(cell.context).controller.parameters(), rebuilt.parameters()):
        assert torch.equal(p, q)


@pytest.mark.slow
def test_shared_mode_searches_once_and_proposes_the_derived_child() -> None:
    space = MBConvSpace(num_layers=3, width=8)
    config = EnasConfig(epochs=2, controller_steps=5, batch_size=32, derive_samples=4)
    cell = make_cell(space, RLAlgorithm("shared", config), lambda arch: 0.5,
                     data=digits_split(max_per_class=20), seed=1)
    assert cell.run(1) == "done"
    assert cell.run(1, algorithm=RLAlgorithm("shared", config)) == "done"  # resumed: no second search
    assert cell.data_calls == 1 and len(cell.search_costs()) == 1
    details = cell.search_costs()[0]
    first, second = cell.history()
    assert details["seconds"] > 0 and details["mode"] == "shared" and details["arch"] == first.arch == second.arch
    assert first.arch_id == details["arch_id"]
    assert 0.0 <= details["shared_val_accuracy"] <= 1.0 and 0.0 <= details["skip_fraction"] <= 1.0
    assert details["controller_updates"] == 10 and details["architectures_evaluated"] == 15


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
