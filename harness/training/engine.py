"""The training evaluator: train a trial's model, report validation accuracy per epoch, test once.

Data stays on the device as ``uint8`` (see :mod:`harness.training.batches`). Models and batches
use channels_last on every device: on the CPU it is the fast path of oneDNN's convolution and
pooling (measured here: 1.3x on a small CIFAR-sized CNN, 1.3x on digits), and on CUDA the tensor
cores' layout. On CUDA the forward pass runs under bf16 autocast (optionally ``torch.compile``). One host
sync per epoch (the loss/accuracy read-back), never per batch. A non-finite training loss stops
the trial as pruned with that reason; validation accuracy drives pruning; the test split is
evaluated once, after the last epoch, and never reported to Optuna.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import optuna
import torch
import torch.nn.functional as F
from torch import nn

from harness.components import (
    Architecture,
    CellContext,
    Evaluator,
    InputShape,
    TrialOutcome,
    TrialStopped,
)
from harness.data import Splits
from harness.measure import count_params, madds_of_builder
from harness.training.batches import DeviceData, Normaliser, iterate_batches
from harness.training.optim import make_optimizer

__all__ = ["EngineSettings", "TrainingEvaluator", "evaluate_accuracy"]

EVAL_BATCH = 1024


@dataclass(frozen=True)
class EngineSettings:
    epochs: int
    device: str = "cpu"
    compile: bool = False
    deterministic: bool = False
    padding: int = 4


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, data: DeviceData, normaliser: Normaliser, *, batch_size: int = EVAL_BATCH,
                      channels_last: bool = False, autocast: bool = False) -> float:
    """Top-1 accuracy of ``model`` on ``data``, every image once, no augmentation."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=data.images.device)
    for x, y in iterate_batches(data, batch_size, normaliser, shuffle=False, channels_last=channels_last):
        with torch.autocast(data.images.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        correct += (logits.argmax(1) == y).sum()
    return correct.item() / max(len(data), 1)


class TrainingEvaluator(Evaluator):
    """Trains ``space.build(arch)`` on the train split; one instance per (process, dataset)."""

    def __init__(self, splits: Splits, settings: EngineSettings) -> None:
        self.settings = settings
        self.device = torch.device(settings.device)
        self.cuda = self.device.type == "cuda"
        self.channels_last = True  # see the module docstring
        self.normaliser = Normaliser.fit(splits.train_images).to(self.device)
        self.train = DeviceData.create(splits.train_images, splits.train_labels, self.device)
        self.val = DeviceData.create(splits.val_images, splits.val_labels, self.device)
        self.test = DeviceData.create(splits.test_images, splits.test_labels, self.device)
        self.augment = splits.augment
        _, c, h, w = splits.train_images.shape
        self.shape = InputShape(int(c), int(h), int(w), len(splits.class_names))
        if self.cuda:
            torch.backends.cudnn.benchmark = not settings.deterministic
        self._warm_up()

    def _warm_up(self) -> None:
        """Pay PyTorch's one-off first-call costs (lazy imports, kernel selection, the flop
        counter's set-up) here, so they are not billed to whichever cell happens to run first."""
        shape = self.shape
        def build() -> nn.Module:
            return nn.Sequential(nn.Conv2d(shape.channels, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                 nn.MaxPool2d(2) if min(shape.height, shape.width) >= 2 else nn.Identity(),
                                 nn.Flatten(), nn.LazyLinear(shape.num_classes))
        madds_of_builder(lambda: nn.Sequential(nn.Conv2d(shape.channels, 4, 3, padding=1), nn.Flatten()), shape)
        model = build().to(self.device)
        x, y = next(iterate_batches(self.train, 8, self.normaliser, shuffle=False, channels_last=self.channels_last))
        model(x)  # materialise the lazy layer
        model = model.to(memory_format=torch.channels_last)
        for name in ("sgd", "adam", "adamw"):
            optimizer, schedule = make_optimizer(model, {"optimizer": name, "lr": 1e-3, "weight_decay": 0.0}, 1)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            schedule.step()
        # on the CPU a few images in the training batch suffice to pay the first calls (see eval_batch)
        val = self.val if self.cuda else DeviceData(self.val.images[:64], self.val.labels[:64])
        evaluate_accuracy(model, val, self.normaliser, batch_size=self.eval_batch(len(y)),
                          channels_last=self.channels_last, autocast=self.cuda)

    def eval_batch(self, train_batch: int) -> int:
        """Evaluation's batch size for a trial that trains on ``train_batch`` images a step.

        On the CPU, the training batch: evaluation then needs no more memory than training already
        holds (it keeps no activations for backward), so it runs in the freed training buffers. A
        larger batch grows the heap at evaluations after an epoch has fragmented it, one page fault
        per 4 KiB touched (on a 64-px Tiny-ImageNet trial, 100-150 k of its 410-460 k faults), and
        1,024 images of 64 filters at 64 px are a 1 GiB activation, past :mod:`harness.allocator`'s
        threshold: mapped afresh for every batch. On CUDA, :data:`EVAL_BATCH` (the caching
        allocator keeps its blocks; fewer launches).
        """
        return EVAL_BATCH if self.cuda else train_batch

    def evaluate(self, trial: optuna.Trial, arch: Architecture, hparams: dict[str, Any],
                 cell: CellContext) -> TrialOutcome:
        settings = self.settings
        seed = hash((cell.seed, trial.number)) & 0x7FFF_FFFF
        torch.manual_seed(seed)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        madds = madds_of_builder(lambda: cell.space.build(arch, self.shape), self.shape)
        model = cell.space.build(arch, self.shape).to(self.device)
        params = count_params(model)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        # torch.compile returns the module wrapped (an nn.Module), typed as a plain callable
        step_model = cast(nn.Module, torch.compile(model)) if settings.compile else model
        batch_size = int(hparams["batch_size"])
        eval_batch = self.eval_batch(batch_size)
        steps_per_epoch = max(len(self.train) // batch_size, 1)
        optimizer, schedule = make_optimizer(model, hparams, steps_per_epoch * settings.epochs)
        report = len(trial.study.directions) == 1  # Optuna forbids report() with several objectives
        outcome = TrialOutcome(val_accuracy=0.0, test_accuracy=None, madds=madds, params=params, epochs=0,
                               train_seconds=0.0, eval_seconds=0.0)
        smoothing = float(hparams.get("label_smoothing", 0.0))
        for epoch in range(1, settings.epochs + 1):
            started = time.perf_counter()
            model.train()
            loss_sum = torch.zeros((), device=self.device)
            for x, y in iterate_batches(self.train, batch_size, self.normaliser, shuffle=True, augment=self.augment,
                                        padding=settings.padding, generator=generator, channels_last=self.channels_last,
                                        drop_last=True):
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
                    loss = F.cross_entropy(step_model(x), y, label_smoothing=smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                loss_sum += loss.detach()
            mean_loss = loss_sum.item() / steps_per_epoch  # the epoch's one host sync
            outcome.train_seconds += time.perf_counter() - started
            outcome.epochs = epoch
            if mean_loss != mean_loss or mean_loss in (float("inf"), float("-inf")):
                outcome.extra["loss"] = mean_loss
                raise TrialStopped(f"training loss is {mean_loss} at epoch {epoch}", outcome)
            started = time.perf_counter()
            outcome.val_accuracy = evaluate_accuracy(step_model, self.val, self.normaliser, batch_size=eval_batch,
                                                     channels_last=self.channels_last, autocast=self.cuda)
            outcome.eval_seconds += time.perf_counter() - started
            outcome.extra["train_loss"] = mean_loss
            if report:
                trial.report(outcome.val_accuracy, epoch)
                if trial.should_prune():
                    raise TrialStopped(f"pruned by {type(trial.study.pruner).__name__} at epoch {epoch}", outcome)
        started = time.perf_counter()
        outcome.test_accuracy = evaluate_accuracy(step_model, self.test, self.normaliser, batch_size=eval_batch,
                                                  channels_last=self.channels_last, autocast=self.cuda)
        outcome.eval_seconds += time.perf_counter() - started
        return outcome
