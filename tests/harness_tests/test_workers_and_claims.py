"""Worker identity, liveness, heartbeats and the atomic run-once claim, on real Optuna storages and
real processes."""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from harness import schema
from harness.claims import KEY, ClaimFailed, claim_first, claims_study, held_elsewhere, release, run_once, stored_result
from harness.storage import open_storage
from harness.workers import Heartbeat, ProcessIdentity, ask, fail_dead_trials, register_worker, this_process

SPAWN = multiprocessing.get_context("spawn")


def _journal(tmp_path: Path) -> str:
    return f"journal:{tmp_path / 'optuna.journal'}"


# -- process identity ------------------------------------------------------------------------


def test_this_process_is_alive_and_a_finished_one_is_not() -> None:
    assert this_process().alive()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = ProcessIdentity.of(proc.pid)
    proc.wait()
    assert not identity.alive()


def test_a_killed_child_not_yet_reaped_is_dead() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    identity = ProcessIdentity.of(proc.pid)
    assert identity.alive()
    os.kill(proc.pid, signal.SIGKILL)
    deadline = time.time() + 10
    while identity.alive() and time.time() < deadline:  # a zombie until reaped below
        time.sleep(0.05)
    assert not identity.alive()
    proc.wait()


def test_a_reused_pid_or_a_reboot_is_not_mistaken_for_the_dead_worker() -> None:
    me = this_process()
    assert not ProcessIdentity({**me, "started": str(int(me["started"]) + 1)}).alive()  # pid now held by another
    assert not ProcessIdentity({**me, "boot": "another-boot"}).alive()  # the machine restarted
    assert ProcessIdentity({**me, "host": "elsewhere/1234"}).alive()  # another machine: its heartbeat decides


# -- ordinals --------------------------------------------------------------------------------


def _register(url: str, run_id: str, out: Any) -> None:
    out.put(register_worker(open_storage(url), run_id))


@pytest.mark.slow  # worker processes or real training
def test_concurrent_processes_get_distinct_ordinals_and_a_lone_process_gets_zero(tmp_path: Path) -> None:
    url = _journal(tmp_path)
    assert register_worker(open_storage(url), "solo") == 0
    out = SPAWN.Queue()
    procs = [SPAWN.Process(target=_register, args=(url, "shared", out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sorted(out.get(timeout=5) for _ in procs) == [0, 1, 2]


def test_sampler_seeds_differ_between_workers_and_on_resume(tmp_path: Path) -> None:
    from harness.cell import CellRun

    storage = open_storage(_journal(tmp_path))
    study = optuna.create_study(storage=storage, study_name="r/cell")
    fresh = [CellRun.sampler_seed(storage, "r/cell", 7, ordinal) for ordinal in range(3)]
    assert fresh[0] == 7 and len(set(fresh)) == 3  # the run's first worker keeps the cell seed
    study.tell(study.ask(), 1.0)
    assert CellRun.sampler_seed(storage, "r/cell", 7, 0) not in fresh  # a resumed cell: new draws


# -- heartbeats ------------------------------------------------------------------------------


@pytest.mark.slow  # worker processes or real training
def test_a_trial_without_heartbeat_is_failed_as_killed_and_a_beating_one_is_not(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'hb.db'}", heartbeat=1)
    study = optuna.create_study(storage=storage, study_name="hb")
    study_id = storage.get_study_id_from_name("hb")
    silent = storage.create_new_trial(study_id, optuna.trial.create_trial(state=TrialState.RUNNING))
    storage.record_heartbeat(silent)  # type: ignore[attr-defined]  # it beat once, then its worker died
    beating = storage.create_new_trial(study_id, optuna.trial.create_trial(state=TrialState.RUNNING))
    with Heartbeat(storage, beating):
        time.sleep(4.5)  # past the grace period of 3 intervals
        dead = fail_dead_trials(study, storage)
    trials = {t.number: t for t in study.get_trials()}
    assert dead == [0]
    assert trials[0].state == TrialState.FAIL and schema.is_killed(trials[0]) and not schema.is_counted(trials[0])
    assert trials[1].state == TrialState.RUNNING


def test_a_trial_of_a_dead_local_process_is_failed_on_the_journal(tmp_path: Path) -> None:
    storage = open_storage(_journal(tmp_path))
    study = optuna.create_study(storage=storage, study_name="j")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_identity = ProcessIdentity.of(proc.pid)
    proc.wait()
    for proc_attr in (dead_identity, this_process()):
        trial = study.ask()
        trial.set_user_attr(schema.PROC, proc_attr)
    assert fail_dead_trials(study, storage) == [0]
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.RUNNING]


# -- run once --------------------------------------------------------------------------------


def _claim_and_work(url: str, key: str, log: str, seconds: float, out: Any) -> None:
    storage = open_storage(url)

    def work() -> dict[str, Any]:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(seconds)
        return {"by": os.getpid()}

    out.put(run_once(claims_study(storage, "run"), storage, key, work, poll=0.05))


@pytest.mark.slow  # worker processes or real training
@pytest.mark.parametrize("backend", ["journal", "sqlite"])
def test_concurrent_workers_do_the_work_once_and_all_get_its_result(tmp_path: Path, backend: str) -> None:
    url = _journal(tmp_path) if backend == "journal" else f"sqlite:///{tmp_path / 'c.db'}"
    open_storage(url)  # create the schema once, so the processes race on the claim, not on the file
    log, out = tmp_path / "calls.log", SPAWN.Queue()
    procs = [SPAWN.Process(target=_claim_and_work, args=(url, "k", str(log), 1.0, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    results = [out.get(timeout=5) for _ in procs]
    assert len(log.read_text().split()) == 1  # exactly one worker worked
    assert len({r["by"] for r, _ in results}) == 1  # everybody got that worker's result
    assert sorted(did for _, did in results) == [False, False, True]


def test_a_killed_owner_is_replaced_and_the_work_is_never_redone_after_it_finished(tmp_path: Path) -> None:
    url = _journal(tmp_path)
    log, out = tmp_path / "calls.log", SPAWN.Queue()
    owner = SPAWN.Process(target=_claim_and_work, args=(url, "k", str(log), 60.0, out))
    owner.start()
    deadline = time.time() + 60
    while time.time() < deadline and not (log.exists() and log.read_text()):
        time.sleep(0.1)
    os.kill(owner.pid, signal.SIGKILL)  # mid-work
    owner.join()
    storage = open_storage(url)
    study = claims_study(storage, "run")
    result, did = run_once(study, storage, "k", lambda: {"by": "me"}, poll=0.05)
    assert (result, did) == ({"by": "me"}, True)
    assert run_once(study, storage, "k", lambda: {"by": "again"}) == ({"by": "me"}, False)
    assert stored_result(study, "k") == {"by": "me"}


def _fail_after(url: str, seconds: float) -> None:
    storage = open_storage(url)

    def work() -> None:
        time.sleep(seconds)
        raise RuntimeError("generator exploded")

    try:
        run_once(claims_study(storage, "run"), storage, "k", work, poll=0.05)
    except RuntimeError:
        pass


@pytest.mark.slow  # worker processes or real training
def test_workers_waiting_on_a_failing_owner_get_its_error_and_a_later_run_retries(tmp_path: Path) -> None:
    url = _journal(tmp_path)
    owner = SPAWN.Process(target=_fail_after, args=(url, 3.0))
    owner.start()
    storage = open_storage(url)
    study = claims_study(storage, "run")
    deadline = time.time() + 60
    while time.time() < deadline and not study.get_trials():
        time.sleep(0.05)
    with pytest.raises(ClaimFailed, match="generator exploded"):
        run_once(study, storage, "k", lambda: {"by": "waiter"}, poll=0.05)
    owner.join()
    assert run_once(study, storage, "k", lambda: {"by": "retry"}) == ({"by": "retry"}, True)


# -- propose and claim -----------------------------------------------------------------------


def _stubborn_cell(tmp_path: Path) -> Any:
    """A cell factory over one journal, and an algorithm that proposes X then Y whatever was
    taken, so that only the harness's claim check keeps architectures unique."""
    from harness.assembly import CellSetup, assemble_cell
    from harness.cell import CellInputs, CellRun
    from harness.components import AlgorithmSpec, SearchAlgorithm, SpaceSpec
    from harness.config import RunConfig
    from harness.grid import Cell
    from harness.registry import load_registry
    from tests.harness_tests.plugins_support import ToySpace

    class Stubborn(SearchAlgorithm):
        """Proposes X first, then Y, whatever was taken: only the harness's claim check dedupes."""

        unique_architectures = True

        def __init__(self) -> None:
            self.queue = [{"kind": "X"}, {"kind": "Y"}]

        def propose(self, trial: Any, cell: Any) -> dict:
            return self.queue.pop(0)

    config = RunConfig(datasets=["digits"], spaces=["toy"], algorithms=["stubborn"], samplers=["random"],
                       pruners=["none"], seeds=[0], trials=5, epochs=1, results=str(tmp_path), progress=False)
    storage = open_storage(_journal(tmp_path))
    cell = Cell("digits", "manual", "toy", "stubborn", "random", "none", 0)

    def run(algorithm: SearchAlgorithm) -> CellRun:
        registry = load_registry().with_components(
            [SpaceSpec(name="toy", description="toy", factory=lambda options: ToySpace()),
             AlgorithmSpec(name="stubborn", description="stubborn", factory=lambda options: algorithm)], plugin="test")
        setup = assemble_cell(cell, config, registry)
        assert isinstance(setup, CellSetup)
        inputs = CellInputs(setup.base_space, None, None, "cpu", lambda: None)  # type: ignore[arg-type]
        return CellRun(config, setup, inputs, storage, claims_study(storage, "r"))

    return run, Stubborn


def test_of_two_trials_claiming_one_architecture_the_later_check_gives_way(tmp_path: Path) -> None:
    from harness.cell import _Attempt

    run, Stubborn = _stubborn_cell(tmp_path)
    first, second = run(Stubborn()), run(Stubborn())
    low, high = first.study.ask(), second.study.ask()  # both in flight: trial numbers 0 and 1
    # the higher-numbered trial claims and checks first: it keeps X; the lower one, checking
    # after, sees that claim and gives way, whatever the numbers
    assert second._propose(high, _Attempt(0.0, start={})) == {"kind": "X"}
    assert first._propose(low, _Attempt(0.0, start={})) == {"kind": "Y"}
    ids = [schema.trial_start(t)["arch_id"] for t in first.study.get_trials()]
    assert len(ids) == len(set(ids)) == 2


def test_a_claim_stored_but_not_yet_checked_makes_a_later_claim_give_way(tmp_path: Path) -> None:
    from harness.cell import _Attempt

    run, Stubborn = _stubborn_cell(tmp_path)
    a, b = run(Stubborn()), run(Stubborn())
    ta, tb = a.study.ask(), b.study.ask()
    ta.set_user_attr(schema.START, {"arch": {"kind": "X"}, "arch_id": a.inputs.space.arch_id({"kind": "X"})})
    assert b._propose(tb, _Attempt(0.0, start={})) == {"kind": "Y"}


def test_a_trial_asked_with_attributes_on_sqlite_takes_parameters(tmp_path: Path) -> None:
    """The study reads an RDB storage through its own cache: a trial created on the storage must
    be known to that cache before a sampler stores a parameter on it (a kill -9 fault run found a
    KeyError there once cells stopped listing their trials after every ask)."""
    storage = open_storage(f"sqlite:///{tmp_path / 'runs.db'}")
    # a sampler that reads no trials (TPE would list them, and so update the cache by chance)
    study = optuna.create_study(storage=storage, study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))
    study.tell(study.ask(), 1.0)  # the cache has read the study once
    trial = ask(study, storage, storage.get_study_id_from_name("s"), {schema.WORKER: "w"})
    assert trial.suggest_categorical("op", ["a", "b"]) in ("a", "b")
    study.tell(trial, 0.5)
    assert [t.params for t in study.get_trials()][1].keys() == {"op"}


def _claim_of(storage: Any, study: optuna.Study, key: str, worker: str, proc: dict[str, Any]) -> int:
    return storage.create_new_trial(study._study_id, template_trial=optuna.trial.create_trial(
        state=TrialState.RUNNING, user_attrs={KEY: key, schema.WORKER: worker, schema.PROC: proc}))


def test_claim_first_keeps_the_lowest_live_claim_of_another_worker_and_gives_way_to_it(tmp_path: Path) -> None:
    from harness.workers import WORKER_ID

    storage = open_storage(f"journal:{tmp_path / 'j'}")
    study = claims_study(storage, "r")
    alive = ProcessIdentity.of(os.getppid())  # not this process, and alive
    dead = dict(this_process(), pid=2**22 + 1, started="1")
    # free, or held by a dead process, or by this worker itself: taken
    mine = claim_first(study, storage, "cell|a")
    assert mine is not None and not held_elsewhere(study, "cell|a")
    _claim_of(storage, study, "cell|b", "elsewhere:2:y", dead)
    assert claim_first(study, storage, "cell|b") is not None
    # another live worker's claim, made first: this worker gives way, and holds nothing
    theirs = _claim_of(storage, study, "cell|c", "elsewhere:1:x", alive)
    assert held_elsewhere(study, "cell|c") and claim_first(study, storage, "cell|c") is None
    assert not [t for t in study.get_trials(states=(TrialState.RUNNING,))
                if t.user_attrs[KEY] == "cell|c" and t.user_attrs[schema.WORKER] == WORKER_ID]
    # ... and takes it once released
    release(storage, theirs)
    assert not held_elsewhere(study, "cell|c") and claim_first(study, storage, "cell|c") is not None
    # a live claim made after this worker's does not take it away: the lower number keeps it
    _claim_of(storage, study, "cell|a", "elsewhere:1:x", alive)
    assert storage.get_trial(mine).state == TrialState.RUNNING
    release(storage, mine)
    assert storage.get_trial(mine).state == TrialState.FAIL and held_elsewhere(study, "cell|a")
