"""Pinned hyperparameters and the run id."""
from __future__ import annotations

import optuna
import pytest

from harness.config import RunConfig
from harness.errors import UsageError
from harness.hyperparams import HyperparameterSpace, parse_fixed


def test_fixed_values_leave_the_sampler_space() -> None:
    fixed = parse_fixed(["lr=0.05", "optimizer=sgd", "batch_size=64"])
    assert fixed == {"lr": 0.05, "optimizer": "sgd", "batch_size": 64}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    hp = HyperparameterSpace(fixed=fixed).suggest(trial)
    assert hp["lr"] == 0.05 and hp["optimizer"] == "sgd" and hp["batch_size"] == 64
    assert set(trial.params) == {"weight_decay", "schedule"}


@pytest.mark.parametrize("item, message", [("lr", "expected NAME=VALUE"), ("lr=fast", "not a valid lr"),
                                           ("depth=3", "expected NAME=VALUE"), ("schedule=step", "must be one of")])
def test_bad_fixed_values(item: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_fixed([item])


def _config(**kw: object) -> RunConfig:
    base: dict = dict(datasets=["digits"], spaces=["convfc"], algorithms=["sampler"], samplers=["tpe"],
                      pruners=["none"], seeds=[0], trials=3, epochs=2)
    base.update(kw)
    return RunConfig(**base)


def test_run_id_depends_on_what_is_computed_not_how() -> None:
    assert _config().run_id == _config(device="cuda", jobs=4, storage="postgresql://x", results="elsewhere").run_id
    assert _config().run_id != _config(epochs=3).run_id
    assert _config().run_id != _config(options={"convfc_max_conv": 5}).run_id
    assert _config().run_id == _config(options={"device": "cpu", "jobs": 2}).run_id
    assert _config(run_id="mine").run_id == "mine"


def test_config_round_trips_through_json() -> None:
    config = _config(fixed={"lr": 0.1}, timeout=5.0)
    assert RunConfig.from_json(config.to_json()) == config


def test_run_id_ignores_options_of_plugins_the_grid_does_not_use() -> None:
    from harness.cli import build_parser, config_from_args
    from harness.registry import load_registry

    def run_id(argv: list[str], plugins: list[str] | None = None) -> str:
        registry = load_registry(plugins)
        return config_from_args(build_parser(registry).parse_args(["bench", *argv]), registry).run_id

    base = run_id([])
    assert run_id(["--rea-population", "7"]) == base  # rea is not in the default grid
    assert run_id(["--convfc-max-conv", "2"]) != base  # convfc is
    assert run_id([], ["digits", "convfc", "sampler-algorithm", "samplers", "pruners", "summary",
                       "importance"]) == base  # fewer plugins installed: same run
    assert run_id(["--fix", "lr=0.1"]) == run_id(["--fix", "lr=0.10"])
