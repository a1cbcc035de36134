"""The generator axis: generation runs once per (generator, base space, data, seed) across every
cell, worker process and resume, and its cost is reported apart."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness import hookimpl
from harness.components import GeneratedSpaceState, GenerationRequest, GeneratorSpec, SearchSpace, SpaceGenerator
from harness.config import RunConfig
from harness.registry import load_registry
from harness.runner import run_bench

LOG = "HARNESS_TEST_GENERATION_LOG"
SLEEP = "HARNESS_TEST_GENERATION_SLEEP"


class Counting(SpaceGenerator):
    """Logs every generation (pid and what it was given), sleeps, and returns the base space."""

    def generate(self, request: GenerationRequest) -> GeneratedSpaceState:
        assert request.data is not None
        with open(os.environ[LOG], "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "seed": request.seed, "base": request.base_name,
                                "train": int(request.data.train_images.shape[0]),
                                "validation": int(request.data.test_images.shape[0])}) + "\n")
        time.sleep(float(os.environ.get(SLEEP, "0")))
        return GeneratedSpaceState(space={"base": request.base_name}, details={"note": "identity"})

    def load(self, base: SearchSpace, state: dict[str, Any]) -> SearchSpace:
        assert state == {"base": "convfc"}
        return base


class Picky(Counting):
    def incompatible(self, base: SearchSpace, dataset: Any) -> str | None:
        return "works on nothing"


class CountingPlugin:
    @hookimpl
    def harness_generators(self) -> list[GeneratorSpec]:
        return [GeneratorSpec(name="counting", description="test", factory=lambda options: Counting()),
                GeneratorSpec(name="picky", description="test", factory=lambda options: Picky())]


def _registry() -> Any:
    return load_registry(extra_plugins=[("counting", CountingPlugin())])


def _config(tmp_path: Path, **overrides: Any) -> RunConfig:
    base: dict[str, Any] = dict(datasets=["digits"], generators=["manual", "counting"], spaces=["convfc"],
                                algorithms=["sampler"], samplers=["random", "tpe"], pruners=["none"], seeds=[0],
                                trials=1, epochs=1, results=str(tmp_path / "results"), progress=False,
                                max_per_class=20, device="cpu", run_id="gen")
    base.update(overrides)
    return RunConfig(**base)


def _generations(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.slow  # worker processes or real training
def test_one_generation_serves_every_cell_of_its_key_and_is_reported_apart(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "generations.log"
    monkeypatch.setenv(LOG, str(log))
    results = run_bench(_config(tmp_path, seeds=[0, 1]), _registry())
    runs = _generations(log)
    # one per seed, none for manual, none per sampler; from train + validation only
    assert sorted(r["seed"] for r in runs) == [0, 1]
    digits_train = 20 * 10
    assert all(r["train"] + r["validation"] == digits_train and r["validation"] > 0 for r in runs)
    cells = results.cells.set_index(["generator", "sampler", "seed"])
    assert cells["state"].eq("done").all()
    assert cells.loc[("manual", "random", 0), "generation_key"] is None or pd.isna(
        cells.loc[("manual", "random", 0), "generation_key"])
    shared = cells.loc["counting"]
    assert shared.loc[("random", 0), "generation_key"] == shared.loc[("tpe", 0), "generation_key"] \
        == "counting|convfc|digits|0"
    assert shared["generation_seconds"].notna().all()
    generations = pd.read_csv(Path(results.run_dir) / "generations.csv")
    assert sorted(generations["generation_key"]) == ["counting|convfc|digits|0", "counting|convfc|digits|1"]
    assert json.loads(generations["details"].iloc[0]) == {"note": "identity"}
    assert set(results.trials["generator"]) == {"manual", "counting"}
    # a second run over the same storage generates nothing again
    run_bench(_config(tmp_path, seeds=[0, 1]), _registry())
    assert len(_generations(log)) == 2


@pytest.mark.slow
def test_a_generator_that_cannot_work_makes_its_cells_not_applicable(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG, str(tmp_path / "log"))
    results = run_bench(_config(tmp_path, generators=["picky", "manual"], samplers=["random"]), _registry())
    cells = results.cells.set_index("generator")
    assert cells.loc["picky", "state"] == "not_applicable"
    assert cells.loc["picky", "reason"] == "generator picky: works on nothing"
    assert cells.loc["manual", "state"] == "done"


def _worker(config_json: dict[str, Any]) -> None:
    from harness.runner import Worker, plan_grid
    from harness.storage import open_storage, storage_url

    config = RunConfig.from_json(config_json)
    registry = _registry()
    worker = Worker(config, registry)
    worker.attach(open_storage(storage_url(config.storage, config.run_dir)))
    worker.work(plan_grid(config, registry))


@pytest.mark.slow
def test_two_worker_processes_generate_once_and_a_killed_generation_is_redone_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spawn = multiprocessing.get_context("spawn")
    log = tmp_path / "generations.log"
    monkeypatch.setenv(LOG, str(log))
    monkeypatch.setenv(SLEEP, "2")
    config = _config(tmp_path, generators=["counting"])
    config.run_dir.mkdir(parents=True)
    workers = [spawn.Process(target=_worker, args=(config.to_json(),)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(180)
    assert [w.exitcode for w in workers] == [0, 0]
    assert len(_generations(log)) == 1

    # a generation killed mid-way is redone once by the next run, then never again
    log.unlink()
    monkeypatch.setenv(SLEEP, "120")
    killed = _config(tmp_path, generators=["counting"], seeds=[5], run_id="gen-kill")
    victim = spawn.Process(target=_worker, args=(killed.to_json(),))
    victim.start()
    deadline = time.time() + 120
    while time.time() < deadline and not _generations(log):
        time.sleep(0.1)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    monkeypatch.setenv(SLEEP, "0")
    results = run_bench(killed, _registry())
    assert results.cells["state"].eq("done").all()
    assert len(_generations(log)) == 2
    run_bench(killed, _registry())
    assert len(_generations(log)) == 2


def test_generation_progress_is_logged_at_every_tenth(caplog: Any) -> None:
    import logging

    from harness.runner import GenerationProgress

    progress = GenerationProgress("generating g|s|d|0", show=False)
    with caplog.at_level(logging.INFO, logger="harness.runner"):
        for done in range(101):
            progress(done, 100)
    progress.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("generating g|s|d|0")]
    assert lines == [f"generating g|s|d|0: {10 * i}/100" for i in range(11)]
