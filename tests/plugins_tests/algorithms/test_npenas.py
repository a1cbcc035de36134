"""npenas-np / npenas-bo: the NPENAS paper's rules (Wei et al., IEEE TNNLS 2022), one by one, then search quality."""
from __future__ import annotations

import importlib.metadata
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from harness_plugins.algorithms import _gin, _gin_kernel, _gin_train, npenas
from harness_plugins.algorithms.npenas import NPENAS, candidates_by_mutation
from harness_plugins.algorithms.random_search import RandomSearch
from harness_plugins.datasets._nb201_synthetic import OPTIMUM
from harness_plugins.generators._layerwise import LayerwiseSpace
from harness_plugins.spaces.nb201 import EDGES, RESNET, NB201Space, arch_to_string

from harness import schema
from harness.components import EvaluatedArchitecture, SpaceExhausted
from harness.registry import load_registry
from harness.testing import KitCell, run_results, run_trials

SEEDS = range(20)
QUALITY_BUDGET = 60  # init 10 + 5 rounds: separates from random by > 6 standard errors, CI-cheap
QUALITY_EPOCHS = 10


@pytest.fixture
def space() -> NB201Space:
    return NB201Space(channels=4, cells=1)


def evaluated(space: NB201Space, n: int, seed: int, accuracy) -> list[EvaluatedArchitecture]:
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(n)]
    return [EvaluatedArchitecture(i, a, space.arch_id(a), accuracy[space.arch_id(a)], "complete")
            for i, a in enumerate(archs)]


def distance(a: dict[str, str], b: dict[str, str]) -> int:
    return sum(a[e] != b[e] for e in EDGES)


# -- candidate generation -------------------------------------------------------------------

def test_candidates_are_unique_unseen_mutants_of_the_best_parents_first(space, cifar10_accuracy) -> None:
    history = evaluated(space, 30, 0, cifar10_accuracy)
    cands = candidates_by_mutation(space, history, 100, np.random.default_rng(0))
    ids = [space.arch_id(c) for c in cands]
    assert len(ids) == 100 == len(set(ids))
    assert not set(ids) & {h.arch_id for h in history}
    ranked = sorted(history, key=lambda h: -h.accuracy)
    assert all(any(distance(c, p.arch) == 1 for p in ranked) for c in cands)
    # best first: the best parent's 24 one-edit neighbours (minus any already seen) come first
    neighbours_of_best = [c for c in cands if distance(c, ranked[0].arch) == 1]
    assert cands[: len(neighbours_of_best)] == neighbours_of_best and len(neighbours_of_best) >= 20


def test_first_trials_are_distinct_random_architectures(space, cifar10_accuracy) -> None:
    algo = NPENAS("np", epochs=1)
    cell = run_trials(algo, space, 10, cifar10_accuracy, seed=0)
    assert len({h.arch_id for h in cell.history()}) == 10
    assert cell.search_costs() == []  # no predictor before the first round


# -- selection -------------------------------------------------------------------------------

def test_np_evaluates_the_lowest_predicted_errors(space, cifar10_accuracy, monkeypatch) -> None:
    seen: dict[str, object] = {}

    def fake_scores(self, space_, archs, errors, candidates, rng, seed):
        seen["candidates"], seen["errors"] = candidates, errors
        seen["scores"] = scores = np.random.default_rng(1).permutation(len(candidates)).astype(float)
        return scores

    monkeypatch.setattr(NPENAS, "_score_candidates", fake_scores)
    cell = run_trials(NPENAS("np", epochs=1), space, 20, cifar10_accuracy, seed=0)
    history = cell.history()
    expected = [seen["candidates"][i] for i in np.argsort(seen["scores"])[:10]]
    assert [h.arch for h in history[10:]] == expected
    assert np.allclose(seen["errors"], [100 * (1 - h.accuracy) for h in history[:10]])  # error in %
    assert len(cell.search_costs()) == 1 and cell.search_costs()[0]["round_start"] == 10


def test_bo_ranks_by_one_thompson_sample(space, monkeypatch) -> None:
    mu, sigma = np.array([30.0, 10.0, 20.0, 50.0]), np.array([1.0, 30.0, 0.5, 2.0])
    eps = np.random.default_rng(7).standard_normal(4)
    assert np.allclose(_gin.thompson_sample(mu, sigma, np.random.default_rng(7)), mu + sigma * eps)
    monkeypatch.setattr(_gin, "predict_gaussian", lambda *args: (mu, sigma))
    archs = [space.sample(np.random.default_rng(i)) for i in range(4)]
    scores = NPENAS("bo", epochs=1)._score_candidates(space, archs, np.ones(4), archs,
                                                      np.random.default_rng(7), 0)
    assert np.allclose(scores, mu + sigma * eps)


# -- predictors ------------------------------------------------------------------------------

def test_bo_loss_is_the_gaussian_nll() -> None:
    gen = torch.Generator().manual_seed(0)
    mu, y = torch.randn(16, generator=gen) * 10, torch.randn(16, generator=gen) * 10
    sigma = torch.rand(16, generator=gen) * 3 + 0.1
    by_hand = torch.mean(0.5 * (y - mu) ** 2 / sigma**2 + torch.log(sigma) + 0.5 * math.log(2 * math.pi))
    torch_nll = torch.nn.GaussianNLLLoss(full=True)(mu, y, sigma**2)
    assert float(_gin.gaussian_nll(mu, sigma, y)) == pytest.approx(float(by_hand), rel=1e-5)
    assert float(_gin.gaussian_nll(mu, sigma, y)) == pytest.approx(float(torch_nll), rel=1e-5)


def test_predictors_follow_the_paper(space) -> None:
    graphs = [space.graph(space.sample(np.random.default_rng(i))) for i in range(5)]
    adj_t, x = _gin.graphs_to_tensors(graphs)
    np_model = _gin.GINPredictor(x.shape[-1])
    widths = [(m.in_features, m.out_features) for m in np_model.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [(8, 32), (32, 32), (32, 32), (32, 32), (32, 32), (32, 32), (32, 16), (16, 1)]
    out = np_model(adj_t, x)
    assert out.shape == (5,) and ((out > 0) & (out < _gin.RATE)).all()
    bo_model = _gin.GINGaussianPredictor(x.shape[-1])
    mu, sigma = bo_model(adj_t, x)
    assert mu.shape == sigma.shape == (5,) and (sigma >= math.exp(-0.5) - 1e-6).all()  # exp(celu/2)
    opt = _gin._optimizer(np_model)
    assert opt.defaults["betas"] == (0.0, 0.9)
    assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [(0.005, 1e-4), (0.01, 0.0)]


@pytest.mark.slow
def test_np_predictor_learns_the_training_errors(space, cifar10_accuracy) -> None:
    history = evaluated(space, 40, 3, cifar10_accuracy)
    graphs = [space.graph(h.arch) for h in history]
    errors = np.array([100 * (1 - h.accuracy) for h in history])
    predicted = _gin.predict_np(graphs, errors, graphs, 100, 0)
    assert np.corrcoef(predicted, errors)[0, 1] > 0.8
    assert np.array_equal(predicted, _gin.predict_np(graphs, errors, graphs, 100, 0))  # seeded


@pytest.mark.parametrize("n", [7, 40])  # one batch of <= 10; batches of 16, 16 and 8
def test_fast_training_gives_the_autograd_predictions(n: int) -> None:
    """The hand-written PyTorch trainer (``_gin_train.fit_fast``) against the plain autograd +
    ``torch.optim`` loop (``_gin.fit``) on random graphs: same predictions and trained state."""
    space = NB201Space()
    rng = np.random.default_rng(n)
    train = [space.graph(space.sample(rng)) for _ in range(n)]
    candidates = [space.graph(space.sample(rng)) for _ in range(50)]
    errors = rng.uniform(5, 95, n)
    fast = _gin.predict_np(train, errors, candidates, 30, 11, trainer=_gin_train.fit_fast)
    slow = _gin.predict_np(train, errors, candidates, 30, 11, trainer=_gin.fit)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-4)
    assert np.ptp(fast) > 1  # a trained predictor ranks: the comparison is not between constants
    mu, sigma = _gin.predict_gaussian(train, errors, candidates, 30, 11, trainer=_gin_train.fit_fast)
    mu_ref, sigma_ref = _gin.predict_gaussian(train, errors, candidates, 30, 11, trainer=_gin.fit)
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sigma, sigma_ref, rtol=1e-5, atol=1e-5)
    adj_t, x = _gin.graphs_to_tensors(train)
    target = torch.as_tensor(errors, dtype=torch.float32)
    states, losses = [], []
    for trainer in (_gin_train.fit_fast, _gin.fit):
        torch.manual_seed(0)
        model = _gin.GINGaussianPredictor(x.shape[-1])
        losses.append(trainer(model, adj_t, x, target, 5, torch.Generator().manual_seed(1)))
        states.append(model.state_dict())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for name, value in states[1].items():  # weights, BatchNorm running statistics, batch counts
        torch.testing.assert_close(states[0][name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_fast_training_rejects_other_models() -> None:
    for trainer in (_gin_train.fit_fast, _gin_kernel.fit_compiled):
        with pytest.raises(TypeError, match="Linear"):
            trainer(torch.nn.Linear(2, 1), torch.zeros(1, 8, 8), torch.zeros(1, 8, 8), torch.zeros(1), 1,
                    torch.Generator())


def _train_both(model_cls, n: int, epochs: int, dtype: torch.dtype, trainers) -> tuple[list[float], list[dict]]:
    """Train the same initial model with each trainer (same shuffles, same dropout masks)."""
    space = NB201Space()
    rng = np.random.default_rng(n)
    adj_t, x = _gin.graphs_to_tensors([space.graph(space.sample(rng)) for _ in range(n)])
    target = torch.as_tensor(rng.uniform(5, 95, n), dtype=dtype)
    losses, states = [], []
    for trainer in trainers:
        torch.manual_seed(0)
        model = model_cls(x.shape[-1]).to(dtype)
        losses.append(trainer(model, adj_t.to(dtype), x.to(dtype), target, epochs, torch.Generator().manual_seed(1)))
        states.append(model.state_dict())
    return losses, states


@pytest.mark.parametrize("n", [7, 40])  # one batch of <= 10; batches of 16, 16 and 8
@pytest.mark.parametrize(("model_cls", "epochs"), [(_gin.GINPredictor, 3), (_gin.GINGaussianPredictor, 30)])
def test_compiled_training_computes_what_autograd_computes(model_cls, epochs: int, n: int) -> None:
    """The compiled loop (the default trainer) against autograd + ``torch.optim`` in float64, where
    rounding noise stays far below Adam's eps: every weight, BatchNorm running statistic, batch
    count and the loss agree. (NP's ReLU layers give some BatchNorm-fed biases gradients that are
    zero up to rounding, and Adam with beta1 = 0 turns their sign into full steps, so NP is compared
    over the first epochs; BO has no such gradients and is compared over 30.)"""
    losses, (compiled, reference) = _train_both(model_cls, n, epochs, torch.float64,
                                                (_gin_kernel.fit_compiled, _gin.fit))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert compiled.keys() == reference.keys()
    for name, value in reference.items():
        torch.testing.assert_close(compiled[name], value, rtol=1e-5, atol=1e-5, msg=name)
    assert any(not torch.equal(compiled[k], v) for k, v in _train_both(model_cls, n, 0, torch.float64,
                                                                      (_gin.fit,))[1][0].items())  # it trained


@pytest.mark.parametrize("model_cls", [_gin.GINPredictor, _gin.GINGaussianPredictor])
def test_compiled_training_in_float32_has_autograds_forward(model_cls) -> None:
    """float32, the default: one epoch of one batch, whose cosine learning-rate factor is 0, so only
    the forward shows: the loss and the BatchNorm running statistics equal autograd's to float32
    precision. (Weights after real steps are compared in float64 above: in float32, gradients that
    are zero up to rounding already flip some biases' first Adam step.)"""
    losses, (compiled, reference) = _train_both(model_cls, 7, 1, torch.float32,
                                                (_gin_kernel.fit_compiled, _gin.fit))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for name, value in reference.items():
        torch.testing.assert_close(compiled[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_compiled_predictors_rank_as_well_as_autograd(cifar10_accuracy) -> None:
    """Statistical equivalence in float32 (the default): over 20 paired seeds, each training on 40
    architectures of the synthetic table and ranking 200 others, the Kendall tau of the predicted
    errors with the true ones is the same for the compiled loop and the exact one (``fit_fast``,
    autograd's weights bit for bit): the 95% confidence interval of the mean paired difference lies
    within +-0.05, for NP and for BO. A wrong gradient or a wrong schedule moves it by far more."""
    from scipy import stats

    space = NB201Space()
    taus: dict[str, list[float]] = {"np": [], "np_ref": [], "bo": [], "bo_ref": []}
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        archs = [space.sample(rng) for _ in range(240)]
        graphs = [space.graph(a) for a in archs]
        errors = np.array([100 * (1 - cifar10_accuracy[space.arch_id(a)]) for a in archs])
        for suffix, trainer in (("", None), ("_ref", _gin_train.fit_fast)):
            predicted = _gin.predict_np(graphs[:40], errors[:40], graphs[40:], 30, seed, trainer=trainer)
            taus["np" + suffix].append(stats.kendalltau(predicted, errors[40:])[0])
            mu, _ = _gin.predict_gaussian(graphs[:40], errors[:40], graphs[40:], 30, seed, trainer=trainer)
            taus["bo" + suffix].append(stats.kendalltau(mu, errors[40:])[0])
    for variant in ("np", "bo"):
        diff = np.array(taus[variant]) - np.array(taus[variant + "_ref"])
        half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
        assert -0.05 < diff.mean() - half and diff.mean() + half < 0.05, (variant, diff.mean(), half)
        assert np.mean(taus[variant]) > 0.3  # both rank: the comparison is not between two failures


def test_exp_without_library_calls_is_exp() -> None:
    z = np.concatenate([-np.logspace(-12, np.log10(40), 500), [0.0]])
    ours = np.array([_gin_kernel._exp_nonpositive(v) for v in z])
    np.testing.assert_allclose(ours, np.exp(z), rtol=1e-12)
    assert _gin_kernel._celu(-1e3) == -1.0 and _gin_kernel._celu(2.5) == 2.5


# -- statelessness and plumbing ---------------------------------------------------------------

@pytest.mark.parametrize("variant", ["np", "bo"])
def test_a_round_is_rebuilt_from_the_history(space, cifar10_accuracy, variant: str) -> None:
    """Mid-round, after another worker (a fresh instance) added trials, the first instance
    proposes what a fresh one (a resumed process) would."""
    algo = NPENAS(variant, epochs=3)
    cell = run_trials(algo, space, 12, cifar10_accuracy, seed=2)
    cell.run(2, algorithm=NPENAS(variant, epochs=3), worker_index=1)
    trial = cell.ask()
    assert algo.propose(trial, cell.context) == NPENAS(variant, epochs=3).propose(trial, cell.context)


def test_factories_read_the_options() -> None:
    specs = {s.name: s for s in npenas.harness_algorithms()}
    assert set(specs) == {"npenas-np", "npenas-bo"}
    assert specs["npenas-np"].factory({}).epochs == 300 and specs["npenas-bo"].factory({}).epochs == 1000
    algo = specs["npenas-bo"].factory({"npenas_bo_epochs": 7, "npenas_init": 5, "npenas_batch": 3,
                                       "npenas_candidates": 20})
    assert (algo.variant, algo.epochs, algo.init, algo.batch, algo.candidates) == ("bo", 7, 5, 3, 20)
    assert NPENAS.requires == frozenset({"sample", "mutate", "graph"})
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="harness")}
    assert names["npenas"] == "harness_plugins.algorithms.npenas"


# -- search quality --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("variant", ["np", "bo"])
def test_oracle_predictor_finds_the_optimum(space, cifar10_accuracy, monkeypatch, variant: str) -> None:
    def oracle(self, space_, archs, errors, candidates, rng, seed):
        return np.array([1 - cifar10_accuracy[space_.arch_id(c)] for c in candidates])

    monkeypatch.setattr(NPENAS, "_score_candidates", oracle)
    for seed in range(5):
        cell = run_trials(NPENAS(variant, epochs=1), space, 100, cifar10_accuracy, seed=seed)
        assert max(cell.history(), key=lambda h: h.accuracy).arch_id == OPTIMUM


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["np", "bo"])
def test_beats_random_search_with_the_same_budget(space, cifar10_accuracy, variant: str) -> None:
    registry = load_registry()

    def best(factory) -> np.ndarray:
        return np.array([run_trials(factory(), space, QUALITY_BUDGET, cifar10_accuracy, seed=s, registry=registry)
                         .study.best_value for s in SEEDS])

    guided, uniform = best(lambda: NPENAS(variant, epochs=QUALITY_EPOCHS)), best(RandomSearch)
    diff = guided - uniform  # paired by seed
    assert diff.mean() > 5 * diff.std(ddof=1) / np.sqrt(len(diff)), (guided.mean(), uniform.mean())


def _random_history(space: NB201Space, seed: int, fail_next: list[bool] | None = None) -> KitCell:
    """A cell holding 10 finished random architectures (NPENAS's initial set) with random
    accuracies; while ``fail_next[0]`` is set, the next evaluation fails (once)."""
    rng = np.random.default_rng(seed)

    def score(arch: dict[str, str]) -> float:
        if fail_next and fail_next[0]:
            fail_next[0] = False
            raise RuntimeError("evaluation failed")
        return float(rng.random())

    return run_trials(RandomSearch(), space, 10, score, seed=seed)


def test_running_and_failed_proposals_are_not_proposed_again() -> None:
    """With several workers (or after a failed trial) NPENAS skips architectures already taken."""
    space = NB201Space()
    fail_next = [False]
    cell = _random_history(space, seed=0, fail_next=fail_next)
    fail_next[0] = True
    cell.run(1, algorithm=NPENAS("np", 2, init=10, batch=10, candidates=30))  # its trial fails
    (failed,) = [r for r in cell.trial_rows() if r["state"] == "failed"]
    assert len(cell.history()) == 10  # a failed trial is not history: the round is unchanged
    second = NPENAS("np", 2, init=10, batch=10, candidates=30).propose(cell.ask(), cell.context)
    assert space.arch_id(second) != failed["arch_id"]


def test_a_round_recomputed_by_another_process_is_billed_once() -> None:
    space = NB201Space()
    cell = _random_history(space, seed=1)
    for _ in range(2):  # two processes (fresh instances) work in the same round
        cell.run(1, algorithm=NPENAS("np", 2, init=10, batch=10, candidates=20))
    assert len(cell.history()) == 12
    assert len(cell.search_costs()) == 1


def test_kernel_compiles_where_no_cache_folder_is_writable(monkeypatch) -> None:
    """A read-only installation and home: Numba cannot cache, and the kernel compiles per process
    instead of failing at import."""
    import numba

    njit = numba.njit

    def no_cache_njit(*args, cache: bool = False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", no_cache_njit)
    add_one = _gin_kernel._jit(lambda v: v + 1)
    assert add_one(41) == 42 and not add_one._cache.__class__.__name__ == "FunctionCache"


# -- a space smaller than the budget ------------------------------------------------------------

#: Two NAS-Bench-201 cells, as an AutoSpace generation with K = 2 picks them.
TWO_CELLS = [arch_to_string(RESNET), "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"]


def small_space(shared: bool = False) -> LayerwiseSpace:
    """A generated layer-wise space over one-cell-per-stage NAS-Bench-201: 2 ** 3 = 8 architectures
    (2 with one shared cell), enumerable, with NPENAS's graph encoding."""
    return LayerwiseSpace(NB201Space(channels=4, cells=1), [TWO_CELLS] * (1 if shared else 3), shared)


def hashed(space: LayerwiseSpace):
    rng = np.random.default_rng(0)
    table = {space.arch_id(a): float(rng.random()) for a in space.enumerate()}
    return lambda arch: table[space.arch_id(arch)]


def test_no_unseen_architecture_left_raises_space_exhausted(monkeypatch) -> None:
    space = small_space()
    every = [space.arch_id(a) for a in space.enumerate()]
    cell = run_trials(RandomSearch(), space, 1, hashed(space))  # a context to propose in
    algo = NPENAS("np", epochs=2)
    with pytest.raises(SpaceExhausted, match="all 8 architectures") as caught:
        algo._random_unseen(cell.context, 5, set(every))
    assert caught.value.size == 8
    # when random draws miss the last unseen architecture, the enumeration finds it
    monkeypatch.setattr(npenas, "SAMPLES", 0)
    assert space.arch_id(algo._random_unseen(cell.context, 5, set(every[1:]))) == every[0]


def test_a_space_that_cannot_be_enumerated_is_exhausted_when_every_draw_was_seen() -> None:
    space = small_space()
    every = {space.arch_id(a) for a in space.enumerate()}
    score = hashed(space)
    space.capabilities = space.capabilities - {"enumerate"}
    cell = run_trials(RandomSearch(), space, 1, score)
    with pytest.raises(SpaceExhausted, match="1000 random draws") as caught:
        NPENAS("np", epochs=2)._random_unseen(cell.context, 5, every)
    assert caught.value.size is None


def test_a_space_smaller_than_the_budget_is_evaluated_once_then_the_cell_is_exhausted(tmp_path: Path) -> None:
    space = small_space()
    cell = run_trials(NPENAS("np", epochs=2, init=3, batch=2, candidates=10), space, 12, hashed(space))
    assert cell.states == ["exhausted"]
    rows = cell.trial_rows()
    assert [r["state"] for r in rows] == ["complete"] * 8 + ["exhausted"]
    assert sorted(r["arch_id"] for r in rows[:8]) == sorted(space.arch_id(a) for a in space.enumerate())
    used = schema.budget_used(cell.study.get_trials(), cell.study.user_attrs)
    assert (used.claimed, used.finished) == (8, 8)
    table = run_results(tmp_path, [cell]).cells
    assert table["state"].tolist() == ["exhausted"] and table["trials_failed"].tolist() == [0]
    assert table["reason"].iloc[0].startswith("search space exhausted: all 8 architectures evaluated in 8 trials")
    # a resume, or a second worker with a fresh instance, does nothing more
    assert cell.run(4, algorithm=NPENAS("np", epochs=2, init=3, batch=2, candidates=10)) == "exhausted"
    assert cell.run(4, algorithm=NPENAS("np", epochs=2, init=3, batch=2, candidates=10), worker_index=1) == "exhausted"
    assert len(cell.trial_rows()) == 9


def _bench(table: Path, results: Path, *extra: str) -> list[str]:
    """``harness bench`` on the nb201 table searching a generated space of 3 shared cells."""
    return ["bench", "--datasets", "nb201-cifar10", "--table", str(table), "--generators", "autospace",
            "--spaces", "nb201", "--nb201-cells", "1", "--nb201-channels", "4", "--autospace-k", "3",
            "--autospace-space-size", "3",
            "--autospace-shared-cell", "--autospace-iterations", "2", "--autospace-warmup", "1",
            "--autospace-batch-size", "16", "--generator-data", "digits", "--max-per-class", "10",
            "--algorithms", "npenas-np", "--npenas-np-epochs", "2", "--npenas-init", "2", "--npenas-batch", "2",
            "--samplers", "random", "--pruners", "none", "--seeds", "0", "--trials", "8",
            "--results", str(results), "--run-id", "small", "--no-progress", "--reporters", "summary", *extra]


def _exhausted_run(results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    cells, trials = pd.read_csv(results / "small" / "cells.csv"), pd.read_csv(results / "small" / "trials.csv")
    assert cells["state"].tolist() == ["exhausted"] and cells["trials_failed"].tolist() == [0]
    assert cells["reason"].iloc[0].startswith("search space exhausted: all 3 architectures evaluated in 3 trials")
    counted = trials[trials["state"].isin(["complete", "pruned", "failed"])]
    assert counted["state"].eq("complete").all() and counted["arch_id"].nunique() == len(counted) == 3
    assert "search space exhausted" in (results / "small" / "summary.md").read_text()
    return cells, trials


def test_the_cli_ends_an_exhausted_cell_with_exit_code_0_and_a_rerun_does_nothing(
        nb201_table_path: Path, tmp_path: Path, caplog) -> None:
    from harness.cli import main

    args = _bench(nb201_table_path, tmp_path / "results")
    assert main(args) == 0
    _, trials = _exhausted_run(tmp_path / "results")
    assert trials["state"].value_counts().to_dict() == {"complete": 3, "exhausted": 1}
    lines = [r.getMessage() for r in caplog.records if "search space exhausted" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("cell nb201-cifar10|autospace|nb201|npenas-np|random|none|0: ")
    assert main(args) == 0  # the rerun resumes the same run: nothing is left to do
    _, again = _exhausted_run(tmp_path / "results")
    assert len(again) == len(trials)


@pytest.mark.slow
def test_two_job_processes_agree_the_cell_is_exhausted(nb201_table_path: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    args = [sys.executable, "-m", "harness", *_bench(nb201_table_path, tmp_path / "results", "--jobs", "2")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    _, trials = _exhausted_run(tmp_path / "results")
    assert set(trials["state"]) <= {"complete", "exhausted", "surplus"}
    assert subprocess.run(args, capture_output=True, timeout=300).returncode == 0
