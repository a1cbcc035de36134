"""The nats-* tables on the official NATS-Bench sample archives: every number the plugin reads is
compared with ``nats_bench``'s own answer for the same query (``get_more_info``, ``get_cost_info``).

The sample (the NATS-Bench repository's test archives: the real meta files and the real files of
architectures 0, 11 and 284 of each space) is copied to a temporary folder first; it is read-only.
"""
from __future__ import annotations

import logging
import math
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

nats_bench = pytest.importorskip("nats_bench", reason="the nats_bench package (pip install 'harness[nats]')")

from harness_plugins.datasets import _nats_archive, nats_table  # noqa: E402
from harness_plugins.datasets._nats_archive import ARCHIVE_NAMES, DATASETS, FULL_SCHEDULE, open_archive  # noqa: E402
from harness_plugins.datasets.nats_table import make_table  # noqa: E402
from harness_plugins.spaces.nats import SizeSpace, parse_size_string  # noqa: E402
from harness_plugins.spaces.nb201 import NB201Space, parse_arch_string  # noqa: E402

from harness.components import DatasetRequest, TrialStopped  # noqa: E402
from harness.errors import DataError, UsageError  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "nats-bench-sample"
INDICES = (0, 11, 284)
SCHEDULES = {"tss": ("12", "200"), "sss": ("12", "90")}
NAMES = {"cifar10-valid": "cifar10-valid", "cifar100": "cifar100", "ImageNet16-120": "imagenet16-120"}


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A writable copy of the sample archives (both spaces) under ``tmp_path / "nats"``."""
    if not SAMPLE.is_dir():
        pytest.skip(f"the NATS-Bench sample archives are not at {SAMPLE}")
    root = tmp_path / "nats"
    for name in ARCHIVE_NAMES.values():
        shutil.copytree(SAMPLE / name, root / name)
        for path in (root / name).iterdir():
            path.chmod(0o644)
    return root


def library(root: Path, space: str):  # noqa: ANN201 - nats_bench is untyped
    return nats_bench.create(str(root / ARCHIVE_NAMES[space]), space, fast_mode=True, verbose=False)


def space_of(name: str):  # noqa: ANN201
    return NB201Space() if "-tss-" in name else SizeSpace()


def arch_at(api, index: int) -> dict:  # noqa: ANN001
    """Architecture ``index`` of the library's space, as the harness's space writes it."""
    text = api.meta_archs[index]
    return parse_size_string(text) if ":" in text else parse_arch_string(text)


def options(root: Path, **given: object) -> dict[str, object]:
    return {"data_dir": str(root), "epochs": 12, "nats_schedule": "12", "nats_seeds": "draw", **given}


def reported(trial: optuna.Trial) -> dict[int, float]:
    """What ``trial`` reported to Optuna, step -> value."""
    return trial.study.get_trials(deepcopy=False)[trial.number].intermediate_values


class FakeCell(SimpleNamespace):
    """What the evaluator reads of a cell: its space (for ``arch_id``) and seed."""


def evaluate(evaluator, space, arch: dict, seed: int = 0, pruner=None, directions=1):  # noqa: ANN001, ANN201
    """One trial of a fresh study, evaluated; returns (outcome or TrialStopped, trial)."""
    never = optuna.pruners.MedianPruner(n_startup_trials=10**9)  # a pruner, so the curve is reported
    study = optuna.create_study(directions=["maximize"] * directions, pruner=pruner or never)
    trial = study.ask()
    try:
        return evaluator.evaluate(trial, arch, {}, FakeCell(space=space, seed=seed)), trial
    except TrialStopped as stop:
        return stop, trial


# ---------------------------------------------------------------------------------------------
# What is read equals what nats_bench answers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["tss", "sss"])
def test_every_value_read_equals_get_more_info(sample: Path, space: str) -> None:
    api = library(sample, space)
    archive = open_archive(sample / ARCHIVE_NAMES[space], space)
    for index in INDICES:
        for hp in SCHEDULES[space]:
            for dataset in DATASETS:
                runs = archive.runs(index, dataset, hp)
                assert runs.seeds == api.query_meta_info_by_index(index, hp).get_dataset_seeds(dataset)
                cost = api.get_cost_info(index, dataset, hp=hp)
                assert (runs.flops, runs.params) == pytest.approx((cost["flops"], cost["params"]))
                for run, is_random in [*((runs.seed(s), s) for s in runs.seeds), (runs.mean(), False)]:
                    final = api.get_more_info(index, dataset, iepoch=None, hp=hp, is_random=is_random)
                    assert run.test == pytest.approx(final["test-accuracy"])
                    for epoch in range(run.epochs):
                        info = api.get_more_info(index, dataset, iepoch=epoch, hp=hp, is_random=is_random)
                        assert run.train_seconds[epoch] == pytest.approx(info["train-all-time"])
                        if "valid-accuracy" in info:
                            assert run.valid[epoch] == pytest.approx(info["valid-accuracy"])
                        else:  # the release's gap: see the module docstring of nats_table
                            assert math.isnan(run.valid[epoch])
                            assert (space, hp) == ("tss", "200") and dataset in ("cifar100", "ImageNet16-120")
                            assert epoch < run.epochs - 1


def test_one_file_per_architecture_read_once_and_the_library_copy_dropped(sample: Path, monkeypatch) -> None:
    archive = open_archive(sample / ARCHIVE_NAMES["tss"], "tss")
    reads: list[int] = []
    reload = archive.api.reload
    monkeypatch.setattr(archive.api, "reload", lambda root, index: (reads.append(index), reload(root, index)))
    for _ in range(3):
        for hp in SCHEDULES["tss"]:
            for dataset in DATASETS:
                archive.runs(11, dataset, hp)
    assert reads == [11] and archive.loaded == 1
    assert archive.api.arch2infos_dict == {}  # the extract is kept, not the library's objects
    assert open_archive(sample / ARCHIVE_NAMES["tss"], "tss") is archive  # one per process and folder


# ---------------------------------------------------------------------------------------------
# The evaluator: the curve reported, the cost charged, the test accuracy, the seed recorded
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(nats_table.DATASETS))
def test_trial_reports_the_validation_curve_and_costs_the_recorded_time(sample: Path, name: str) -> None:
    space_key, dataset, _ = nats_table.DATASETS[name]
    api = library(sample, space_key)
    table = make_table(name, options(sample))
    evaluator = table.open(DatasetRequest(data_dir=sample))
    space = space_of(name)
    for seed, index in enumerate(INDICES):
        arch = arch_at(api, index)
        outcome, trial = evaluate(evaluator, space, arch, seed)
        drawn = outcome.extra["nats_seed"]
        assert drawn in api.query_meta_info_by_index(index, "12").get_dataset_seeds(dataset)
        curve = [api.get_more_info(index, dataset, iepoch=e, hp="12", is_random=drawn)["valid-accuracy"] / 100
                 for e in range(12)]
        assert [reported(trial)[e] for e in range(1, 13)] == \
            pytest.approx(curve)
        last = api.get_more_info(index, dataset, iepoch=11, hp="12", is_random=drawn)
        assert outcome.val_accuracy == pytest.approx(last["valid-accuracy"] / 100) and outcome.epochs == 12
        assert outcome.simulated_seconds == pytest.approx(last["train-all-time"]) == outcome.train_seconds
        full = FULL_SCHEDULE[space_key]
        test = api.get_more_info(index, dataset, hp=full, is_random=outcome.extra["nats_test_seed"])
        assert outcome.test_accuracy == pytest.approx(test["test-accuracy"] / 100)
        cost = api.get_cost_info(index, dataset, hp="12")
        assert outcome.madds == pytest.approx(cost["flops"] * 1e6) and outcome.params == round(cost["params"] * 1e6)
        assert outcome.extra["nats_index"] == index and outcome.extra["nats_schedule"] == 12


def test_the_drawn_seed_follows_the_trial_and_mean_averages_the_runs(sample: Path) -> None:
    api = library(sample, "tss")
    arch = arch_at(api, 284)
    drawn = {}
    for seed in range(12):
        evaluator = make_table("nats-tss-cifar10-valid", options(sample)).open(DatasetRequest(data_dir=sample))
        first, _ = evaluate(evaluator, NB201Space(), arch, seed)
        again, _ = evaluate(evaluator, NB201Space(), arch, seed)
        assert first.extra["nats_seed"] == again.extra["nats_seed"]  # the trial's own stream: reproducible
        drawn[seed] = first.extra["nats_seed"]
    assert set(drawn.values()) == {111, 777}  # both recorded runs of the 12-epoch schedule are drawn
    evaluator = make_table("nats-tss-cifar10-valid", options(sample, nats_seeds="mean")).open(
        DatasetRequest(data_dir=sample))
    outcome, _ = evaluate(evaluator, NB201Space(), arch)
    mean = api.get_more_info(284, "cifar10-valid", iepoch=11, hp="12", is_random=False)
    assert outcome.extra["nats_seed"] == outcome.extra["nats_test_seed"] == "mean"
    assert outcome.val_accuracy == pytest.approx(mean["valid-accuracy"] / 100)
    assert outcome.simulated_seconds == pytest.approx(mean["train-all-time"])
    final = api.get_more_info(284, "cifar10-valid", hp="200", is_random=False)
    assert outcome.test_accuracy == pytest.approx(final["test-accuracy"] / 100)


class PruneAt(optuna.pruners.BasePruner):
    """Prunes every trial once it has reported ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.last_step is not None and trial.last_step >= self.epoch


@pytest.mark.parametrize("name", ["nats-tss-cifar100", "nats-sss-imagenet16-120"])
def test_a_pruned_trial_is_charged_only_the_epochs_it_ran(sample: Path, name: str) -> None:
    space_key, dataset, _ = nats_table.DATASETS[name]
    api = library(sample, space_key)
    arch = arch_at(api, 11)
    evaluator = make_table(name, options(sample)).open(DatasetRequest(data_dir=sample))
    stop, trial = evaluate(evaluator, space_of(name), arch, pruner=PruneAt(4))
    assert isinstance(stop, TrialStopped) and "epoch 4" in stop.reason
    info = api.get_more_info(11, dataset, iepoch=3, hp="12", is_random=stop.outcome.extra["nats_seed"])
    assert stop.outcome.epochs == 4 and stop.outcome.test_accuracy is None
    assert stop.outcome.val_accuracy == pytest.approx(info["valid-accuracy"] / 100)
    assert stop.outcome.simulated_seconds == pytest.approx(info["train-all-time"])
    whole = api.get_more_info(11, dataset, iepoch=11, hp="12", is_random=stop.outcome.extra["nats_seed"])
    assert stop.outcome.simulated_seconds < whole["train-all-time"]


def test_epochs_cap_the_schedule_with_a_warning(sample: Path, caplog: pytest.LogCaptureFixture) -> None:
    api = library(sample, "sss")
    with caplog.at_level(logging.WARNING):
        evaluator = make_table("nats-sss-cifar100", options(sample, epochs=5)).open(DatasetRequest(data_dir=sample))
    assert "--epochs 5 stops every trial at epoch 5 of the 12-epoch schedule" in caplog.text
    outcome, trial = evaluate(evaluator, SizeSpace(), arch_at(api, 0))
    info = api.get_more_info(0, "cifar100", iepoch=4, hp="12", is_random=outcome.extra["nats_seed"])
    assert outcome.epochs == 5 and sorted(reported(trial)) == [1, 2, 3, 4, 5]
    assert outcome.val_accuracy == pytest.approx(info["valid-accuracy"] / 100)
    assert outcome.simulated_seconds == pytest.approx(info["train-all-time"])


def test_without_a_pruner_no_intermediate_value_is_stored(sample: Path) -> None:
    api = library(sample, "tss")
    evaluator = make_table("nats-tss-cifar10-valid", options(sample)).open(DatasetRequest(data_dir=sample))
    outcome, trial = evaluate(evaluator, space_of("nats-tss-cifar10-valid"), arch_at(api, INDICES[0]),
                              pruner=optuna.pruners.NopPruner())
    assert outcome.epochs == 12 and reported(trial) == {}


def test_multi_objective_studies_get_no_intermediate_values(sample: Path) -> None:
    api = library(sample, "sss")
    evaluator = make_table("nats-sss-cifar10-valid", options(sample)).open(DatasetRequest(data_dir=sample))
    outcome, trial = evaluate(evaluator, SizeSpace(), arch_at(api, 284), directions=2)
    assert outcome.epochs == 12 and reported(trial) == {}
    assert outcome.madds == pytest.approx(api.get_cost_info(284, "cifar10-valid", hp="12")["flops"] * 1e6)


def test_full_schedules(sample: Path) -> None:
    # size space: 90 epochs, one recorded run, a validation accuracy after every epoch
    api = library(sample, "sss")
    evaluator = make_table("nats-sss-cifar100", options(sample, epochs=90, nats_schedule="full")).open(
        DatasetRequest(data_dir=sample))
    outcome, trial = evaluate(evaluator, SizeSpace(), arch_at(api, 11))
    info = api.get_more_info(11, "cifar100", hp="90", is_random=777)
    assert outcome.epochs == 90 and len(reported(trial)) == 90
    assert (outcome.val_accuracy, outcome.test_accuracy) == pytest.approx(
        (info["valid-accuracy"] / 100, info["test-accuracy"] / 100))
    assert outcome.simulated_seconds == pytest.approx(info["train-all-time"])
    assert outcome.extra["nats_seed"] == outcome.extra["nats_test_seed"] == 777  # the same run
    # topology space, cifar10-valid: 200 epochs of x-valid, the test (ori-test) after the last
    api = library(sample, "tss")
    table = make_table("nats-tss-cifar10-valid", options(sample, epochs=200, nats_schedule="full"))
    assert table.reports_epochs
    outcome, trial = evaluate(table.open(DatasetRequest(data_dir=sample)), NB201Space(),
                              arch_at(api, 0))
    info = api.get_more_info(0, "cifar10-valid", hp="200", is_random=outcome.extra["nats_seed"])
    assert len(reported(trial)) == 200
    assert (outcome.val_accuracy, outcome.test_accuracy) == pytest.approx(
        (info["valid-accuracy"] / 100, info["test-accuracy"] / 100))


def test_topology_full_schedule_on_cifar100_reports_after_the_last_epoch_only(sample: Path) -> None:
    with pytest.raises(UsageError, match="give --epochs 200, or --nats-schedule 12"):
        make_table("nats-tss-cifar100", options(sample, epochs=12, nats_schedule="full"))
    table = make_table("nats-tss-imagenet16-120", options(sample, epochs=200, nats_schedule="full"))
    assert not table.reports_epochs  # its cells with a pruner are n/a: nothing to prune on
    api = library(sample, "tss")
    outcome, trial = evaluate(table.open(DatasetRequest(data_dir=sample)), NB201Space(),
                              arch_at(api, 11), seed=3)
    info = api.get_more_info(11, "ImageNet16-120", hp="200", is_random=outcome.extra["nats_seed"])
    assert reported(trial) == pytest.approx(
        {200: info["valid-accuracy"] / 100})
    assert outcome.epochs == 200 and outcome.simulated_seconds == pytest.approx(info["train-all-time"])
    assert outcome.test_accuracy == pytest.approx(info["test-accuracy"] / 100)


# ---------------------------------------------------------------------------------------------
# One-line errors
# ---------------------------------------------------------------------------------------------


def test_missing_package_names_it(sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nats_bench", None)
    table = make_table("nats-tss-cifar100", options(sample / "elsewhere"))
    with pytest.raises(UsageError, match=r"nats_bench package: pip install 'harness\[nats\]'") as info:
        table.open(DatasetRequest(data_dir=sample / "elsewhere"))
    assert "\n" not in str(info.value)


def test_missing_archive_names_it_and_where_to_get_it(tmp_path: Path) -> None:
    table = make_table("nats-sss-cifar100", options(tmp_path))
    with pytest.raises(DataError) as info:
        table.open(DatasetRequest(data_dir=tmp_path))
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / ARCHIVE_NAMES["sss"]) in message
    assert "NATS-sss-v1_0-50262-simple from the NATS-Bench release" in message and "--nats-sss-dir" in message


def test_archive_option_overrides_data_dir(sample: Path, tmp_path: Path) -> None:
    moved = tmp_path / "anywhere"
    shutil.move(str(sample / ARCHIVE_NAMES["tss"]), moved)
    table = make_table("nats-tss-cifar100", options(tmp_path / "nothing", nats_tss_dir=str(moved)))
    evaluator = table.open(DatasetRequest(data_dir=tmp_path / "nothing"))
    assert evaluator.archive.path == moved


def test_an_architecture_missing_from_a_partial_archive_is_one_line(sample: Path) -> None:
    evaluator = make_table("nats-tss-cifar10-valid", options(sample)).open(DatasetRequest(data_dir=sample))
    absent = parse_arch_string(evaluator.archive.arch_string(5))
    with pytest.raises(DataError, match=r"has no file for architecture 5 .*--nats-tss-archs archive") as info:
        evaluate(evaluator, NB201Space(), absent)
    assert "\n" not in str(info.value)


def test_bad_option_values_are_usage_errors(sample: Path) -> None:
    with pytest.raises(UsageError, match="--nats-schedule '200'"):
        make_table("nats-tss-cifar100", options(sample, nats_schedule="200"))
    with pytest.raises(UsageError, match="--nats-seeds 'all'"):
        make_table("nats-tss-cifar100", options(sample, nats_seeds="all"))


def test_a_corrupt_file_is_a_data_error(sample: Path) -> None:
    (sample / ARCHIVE_NAMES["sss"] / "000011.pickle.pbz2").write_bytes(b"not bz2")
    archive = open_archive(sample / ARCHIVE_NAMES["sss"], "sss")
    with pytest.raises(DataError, match="000011.pickle.pbz2 is unreadable"):
        archive.runs(11, "cifar100", "12")


# ---------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------


def test_the_plugin_registers_six_tables_through_its_entry_point() -> None:
    from harness.registry import load_registry

    registry = load_registry(["nats-table"])
    assert set(registry.names("dataset")) == set(nats_table.DATASETS)
    assert {NAMES[d] for d in DATASETS} == {n.split("-", 2)[2] for n in nats_table.DATASETS}


def test_registration_imports_neither_nats_bench_nor_torch() -> None:
    code = ("import sys\nfrom harness_plugins.datasets import nats_table\nfrom harness_plugins.spaces import nats\n"
            "nats_table.harness_datasets(); nats.harness_spaces()\n"
            "print(sorted(n for n in ('torch', 'nats_bench') if n in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_archive_module_is_cached_per_folder_not_per_name(sample: Path) -> None:
    first = _nats_archive.open_archive(sample / ARCHIVE_NAMES["sss"], "sss")
    assert _nats_archive.open_archive(sample / ".." / "nats" / ARCHIVE_NAMES["sss"], "sss") is first


def test_harness_bench_on_the_sample_stays_within_its_three_architectures(sample: Path, tmp_path: Path) -> None:
    import pandas as pd

    from harness.cli import main

    results = tmp_path / "results"
    assert main(["bench", "--data-dir", str(sample), "--results", str(results), "--seeds", "0", "--no-progress",
                 "--reporters", "summary", "--datasets", "nats-tss-cifar100,nats-sss-imagenet16-120",
                 "--spaces", "nats-tss,nats-sss", "--nats-tss-archs", "archive", "--nats-sss-archs", "archive",
                 "--algorithms", "random,rea,sampler", "--samplers", "tpe", "--pruners", "none,median",
                 "--trials", "8", "--epochs", "12"]) == 0
    (run_dir,) = results.iterdir()
    trials, cells = pd.read_csv(run_dir / "trials.csv"), pd.read_csv(run_dir / "cells.csv")
    ran = cells[cells["state"] != "not_applicable"]
    assert len(ran) == 12 and set(ran["state"]) == {"done"}  # 2 tables x 3 algorithms x 2 pruners
    assert set(trials["state"]) <= {"complete", "pruned"} and len(trials) == 12 * 8
    assert set(trials["extra.nats_index"]) <= set(INDICES)


def test_synthetic_archives_use_the_costs_the_release_records(sample: Path) -> None:
    from harness_plugins.datasets._nats_synthetic import SHAPES, size_costs, topology_costs

    for space in ("tss", "sss"):
        api = library(sample, space)
        for index in INDICES:
            text = api.meta_archs[index]
            for dataset, shape in SHAPES.items():
                cost = api.get_cost_info(index, dataset, hp="12")
                mine = (topology_costs(parse_arch_string(text), shape) if space == "tss"
                        else size_costs([int(c) for c in text.split(":")], shape))
                assert mine == pytest.approx((cost["flops"], cost["params"]), abs=1e-6)


def test_where_the_archive_lies_is_no_part_of_the_run_id() -> None:
    from harness.cli import build_parser, config_from_args
    from harness.registry import load_registry

    registry = load_registry(["nats-table", "nats-spaces", "random", "samplers", "pruners"])

    def run_id(*args: str) -> str:
        parsed = build_parser(registry).parse_args(["bench", "--datasets", "nats-tss-cifar100", "--spaces", "nats-tss",
                                                    "--algorithms", "random", *args])
        return str(config_from_args(parsed, registry).run_id)

    assert run_id("--nats-tss-dir", "/a") == run_id("--nats-tss-dir", "/b") == run_id()
    assert run_id("--nats-seeds", "mean") != run_id() != run_id("--nats-schedule", "full")


def test_reference_accuracy_is_the_full_schedule_test_accuracy_over_seeds(sample: Path) -> None:
    """What a method's ranking is scored against: ``get_more_info``'s test accuracy after the full
    schedule, averaged over the recorded runs; ``None`` for an architecture the archive lacks."""
    api = library(sample, "tss")
    evaluator = make_table("nats-tss-cifar100", options(sample)).open(DatasetRequest(data_dir=sample))
    for index in (0, 11, 284):
        expected = api.get_more_info(index, "cifar100", hp="200", is_random=False)["test-accuracy"] / 100
        assert evaluator.reference_accuracy(api.arch(index)) == pytest.approx(expected)
    assert evaluator.reference_accuracy("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") is None
