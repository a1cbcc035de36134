"""The training evaluator: it learns, it reports validation (never test), NaN stops a trial."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from harness_plugins.datasets.digits import Digits
from harness_plugins.spaces.convfc import ConvFCSpace

from harness.components import DatasetRequest, TrialStopped
from harness.data import split_train_validation
from harness.training import engine
from harness.training.engine import EVAL_BATCH, EngineSettings, TrainingEvaluator

HP = {"optimizer": "adam", "lr": 3e-3, "weight_decay": 1e-4, "batch_size": 64, "schedule": "cosine"}
ARCH = {"conv": [{"filters": 16, "kernel": 3, "pool": True}], "dropout": 0.0, "fc": [64]}


class _Cell:
    def __init__(self) -> None:
        self.space = ConvFCSpace()
        self.seed = 0


@pytest.fixture(scope="module")
def evaluator() -> TrainingEvaluator:
    data = Digits().load(DatasetRequest(Path(".")))
    return TrainingEvaluator(split_train_validation(data, 0.2, 0), EngineSettings(epochs=4, device="cpu"))


def _trial() -> optuna.Trial:
    return optuna.create_study(direction="maximize").ask()


@pytest.mark.slow
def test_training_beats_chance_by_far_on_real_digits(evaluator: TrainingEvaluator) -> None:
    trial = _trial()
    outcome = evaluator.evaluate(trial, ARCH, HP, _Cell())  # type: ignore[arg-type]
    assert outcome.val_accuracy > 0.85 and outcome.test_accuracy is not None and outcome.test_accuracy > 0.85
    assert outcome.epochs == 4 and outcome.madds > 0 and outcome.params > 0


@pytest.mark.slow
def test_reports_validation_each_epoch_and_never_test(evaluator: TrainingEvaluator) -> None:
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    outcome = evaluator.evaluate(trial, ARCH, HP, _Cell())  # type: ignore[arg-type]
    reported = study.trials[0].intermediate_values
    assert sorted(reported) == [1, 2, 3, 4]
    assert reported[4] == outcome.val_accuracy
    n_val, n_test = len(evaluator.val), len(evaluator.test)
    assert n_val != n_test
    for value in reported.values():  # every reported accuracy is a count over the validation images
        assert value * n_val == pytest.approx(round(value * n_val))
    assert outcome.test_accuracy * n_test == pytest.approx(round(outcome.test_accuracy * n_test))


@pytest.mark.slow
def test_same_seed_same_result(evaluator: TrainingEvaluator) -> None:
    first = evaluator.evaluate(_trial(), ARCH, HP, _Cell()).val_accuracy  # type: ignore[arg-type]
    second = evaluator.evaluate(_trial(), ARCH, HP, _Cell()).val_accuracy  # type: ignore[arg-type]
    assert first == second


def test_exploding_learning_rate_stops_as_nan(evaluator: TrainingEvaluator) -> None:
    hp: dict[str, Any] = {**HP, "optimizer": "sgd", "lr": 1e12, "nesterov": False}
    with pytest.raises(TrialStopped, match=r"training loss is (nan|inf)") as info:
        evaluator.evaluate(_trial(), ARCH, hp, _Cell())  # type: ignore[arg-type]
    assert info.value.outcome.epochs >= 1


def test_cpu_evaluation_runs_in_the_training_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the CPU, validation and test passes use the trial's batch size, so they fit in the
    memory training already touched; CUDA keeps the large evaluation batch."""
    data = Digits().load(DatasetRequest(Path(".")))
    evaluator = TrainingEvaluator(split_train_validation(data, 0.2, 0), EngineSettings(epochs=2, device="cpu"))
    seen: list[int] = []
    evaluate_accuracy = engine.evaluate_accuracy

    def recording(*args: Any, batch_size: int, **kwargs: Any) -> float:
        seen.append(batch_size)
        return evaluate_accuracy(*args, batch_size=batch_size, **kwargs)

    monkeypatch.setattr(engine, "evaluate_accuracy", recording)
    outcome = evaluator.evaluate(_trial(), ARCH, {**HP, "batch_size": 48}, _Cell())  # type: ignore[arg-type]
    assert seen == [48, 48, 48] and outcome.test_accuracy is not None  # two validation passes, one test
    assert evaluator.eval_batch(48) == 48
    evaluator.cuda = True
    assert evaluator.eval_batch(48) == EVAL_BATCH
