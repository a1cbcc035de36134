"""A search loop over a real in-memory Optuna study, without the core's runner.

``DriverCell`` implements :class:`harness.components.CellContext` the way the runner does for
multi-trial algorithms: the history is read back from the study (the architecture and its id are
trial user attributes), so an algorithm that kept hidden state would be caught. ``run_search``
does what the runner does per trial (ask, propose, store the arch, evaluate, tell), with the
NAS-Bench-201 table evaluator or any ``arch -> accuracy`` function.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import optuna

from harness.components import (
    CellContext,
    EvaluatedArchitecture,
    ImageData,
    InputShape,
    SearchAlgorithm,
    SearchSpace,
)

__all__ = ["DriverCell", "run_search"]

_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


class DriverCell(CellContext):
    def __init__(self, space: SearchSpace, study: optuna.Study, seed: int,
                 options: dict[str, Any] | None = None) -> None:
        self.space = space
        self.study = study
        self.seed = seed
        self.shape = InputShape(3, 32, 32, 10)
        self.device = "cpu"
        self.options = options or {}
        self.costs: list[tuple[float, dict[str, Any]]] = []
        self.history_calls = 0

    def history(self) -> list[EvaluatedArchitecture]:
        self.history_calls += 1
        out = []
        for t in self.study.get_trials(deepcopy=False, states=_FINISHED):
            value = t.value if t.value is not None else t.intermediate_values[max(t.intermediate_values)]
            out.append(EvaluatedArchitecture(t.number, json.loads(t.user_attrs["arch"]),
                                             t.user_attrs["arch_id"], float(value), t.state.name.lower()))
        return out

    def data(self) -> ImageData | None:
        return None

    def get_cell_state(self, key: str) -> Any:
        return self.study.user_attrs.get(key)

    def set_cell_state(self, key: str, value: Any) -> None:
        self.study.set_user_attr(key, value)

    def record_search_cost(self, seconds: float, **details: Any) -> None:
        json.dumps(details)  # must be storable
        self.costs.append((seconds, details))


def run_search(algorithm: SearchAlgorithm, space: SearchSpace, accuracy: Callable[[str], float] | Any,
               budget: int, seed: int, study: optuna.Study | None = None) -> DriverCell:
    """Run ``budget`` trials (more, if ``study`` already holds some). ``accuracy`` is an
    :class:`harness.components.Evaluator` or a function of the arch id."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if study is None:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed),
                                    pruner=optuna.pruners.NopPruner(),
                                    study_name=f"cell-{seed}")
    cell = DriverCell(space, study, seed)
    algorithm.prepare(cell)
    for _ in range(budget):
        trial = study.ask()
        arch = algorithm.propose(trial, cell)
        arch_id = space.arch_id(arch)
        trial.set_user_attr("arch", json.dumps(arch))
        trial.set_user_attr("arch_id", arch_id)
        if callable(accuracy):
            value = accuracy(arch_id)
            trial.report(value, 1)
        else:
            value = accuracy.evaluate(trial, arch, {}, cell).val_accuracy
        study.tell(trial, value)
    return cell
