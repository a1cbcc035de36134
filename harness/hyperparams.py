"""Training hyperparameters: the part of every trial the Optuna sampler decides.

The search algorithm decides the architecture; the sampler decides these. Every value
can be pinned from the command line (``--fix lr=0.05 --fix optimizer=sgd``), which removes it from
the sampler's space and records it in every row. The epoch count is the trial's budget, not a
hyperparameter (``--epochs``), so pruners compare like with like.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from harness.errors import UsageError

if TYPE_CHECKING:
    import optuna

__all__ = ["HyperparameterSpace", "parse_fixed"]

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "onecycle")
BATCH_SIZES = (32, 64, 128, 256)


@dataclass(frozen=True)
class HyperparameterSpace:
    """The ranges the sampler searches, and the values pinned by ``--fix``."""

    lr: tuple[float, float] = (1e-4, 3e-1)
    weight_decay: tuple[float, float] = (1e-6, 1e-2)
    optimizers: tuple[str, ...] = OPTIMIZERS
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    schedules: tuple[str, ...] = ("cosine",)
    label_smoothing: float = 0.0
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest every hyperparameter not pinned, and return all of them (pinned included)."""
        fixed = self.fixed

        def pick(name: str, suggest: Any) -> Any:
            return fixed[name] if name in fixed else suggest()

        return {
            "optimizer": pick("optimizer", lambda: trial.suggest_categorical("optimizer", self.optimizers)),
            "lr": pick("lr", lambda: trial.suggest_float("lr", *self.lr, log=True)),
            "weight_decay": pick("weight_decay",
                                 lambda: trial.suggest_float("weight_decay", *self.weight_decay, log=True)),
            "batch_size": pick("batch_size", lambda: trial.suggest_categorical("batch_size", self.batch_sizes)),
            "schedule": pick("schedule", lambda: trial.suggest_categorical("schedule", self.schedules)),
            "label_smoothing": fixed.get("label_smoothing", self.label_smoothing),
            "momentum": fixed.get("momentum", 0.9),
            "nesterov": fixed.get("nesterov", True),
        }


_TYPES: dict[str, Callable[[str], Any]] = {
    "lr": float, "weight_decay": float, "batch_size": int, "label_smoothing": float, "momentum": float,
    "optimizer": str, "schedule": str, "nesterov": lambda s: s.lower() in ("1", "true", "yes"),
}
_CHOICES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES}
_LOWER_BOUNDS = {"lr": (1e-300, "positive"), "batch_size": (1, "at least 1"), "weight_decay": (0.0, "at least 0"),
                 "label_smoothing": (0.0, "at least 0"), "momentum": (0.0, "at least 0")}

_UPPER_BOUNDS = {"label_smoothing": (0.99, "below 1"), "momentum": (1.0, "at most 1"),
                 "batch_size": (1 << 20, "at most 1048576")}


def parse_fixed(items: list[str] | None) -> dict[str, Any]:
    """Parse ``--fix name=value`` items; an unknown name or bad value is a one-line UsageError."""
    fixed: dict[str, Any] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        if not sep or name not in _TYPES:
            raise UsageError(f"--fix {item!r}: expected NAME=VALUE with NAME in {', '.join(sorted(_TYPES))}")
        try:
            value = _TYPES[name](raw)
        except ValueError:
            raise UsageError(f"--fix {item!r}: {raw!r} is not a valid {name}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"--fix {item!r}: {name} must be a finite number")
        if name == "nesterov" and raw.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise UsageError(f"--fix {item!r}: nesterov must be true or false")
        if name in _UPPER_BOUNDS and not value <= _UPPER_BOUNDS[name][0]:
            raise UsageError(f"--fix {item!r}: {name} must be {_UPPER_BOUNDS[name][1]}")
        if name in fixed:
            raise UsageError(f"--fix {item!r}: {name} is pinned twice")
        if name in _LOWER_BOUNDS and not value >= _LOWER_BOUNDS[name][0]:
            raise UsageError(f"--fix {item!r}: {name} must be {_LOWER_BOUNDS[name][1]}")
        if name in _CHOICES and value not in _CHOICES[name]:
            raise UsageError(f"--fix {item!r}: {name} must be one of {', '.join(_CHOICES[name])}")
        fixed[name] = value
    return fixed
