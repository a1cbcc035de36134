"""Who a worker is, whether it is alive, and its heartbeat.

Every process that works on a run is a *worker*. It has

- a **worker id** (``host/machine-id:pid:nonce``), written on every trial it asks;
- a **process identity** (boot id, pid, process start time), so a dead worker on this machine is
  told from a live one even when its pid was reused (a restarted container's pid 1, a recycled
  pid): the start time of the process now holding that pid differs, or the boot id does;
- an **ordinal** in the run: a number handed out atomically by the storage (the trial number of
  its entry in the run's ``<run-id>/workers`` study), so concurrent processes never share one and
  a single uninterrupted process is always ordinal 0 (exactly reproducible);
- a **heartbeat** on storages that support Optuna's (the RDB storages: SQLite, PostgreSQL): a
  background thread calls ``storage.record_heartbeat`` for the trial in progress, and stale trials
  (no beat for the grace period) are failed and retried by any worker, on any machine. The journal
  file, which has no heartbeat, is shared by processes of one machine only, so liveness there is
  the process identity above.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from harness import schema

__all__ = ["WORKER_ID", "Heartbeat", "ProcessIdentity", "ask", "ask_with_id", "fail_dead_trials", "has_heartbeat",
           "of_another_live_worker", "register_worker", "this_process"]

log = logging.getLogger(__name__)


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _host_id() -> str:
    """The host name plus the machine id (cloned VMs and containers may share a host name)."""
    machine = _read("/etc/machine-id")[:8]
    return f"{socket.gethostname()}/{machine}" if machine else socket.gethostname()


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (Linux), or ``[]``."""
    stat = _read(f"/proc/{pid}/stat")
    # the command name (field 2) may hold spaces and parentheses: fields after the last ')'
    return stat.rsplit(")", 1)[1].split() if stat else []


def _start_time(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot (Linux), or ``""``."""
    fields = _stat_fields(pid)
    return fields[19] if fields else ""


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited and waits to be reaped by its parent (it still answers signals)."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] in ("Z", "X")


class ProcessIdentity(dict):  # a dict, so it is stored as JSON as it is
    """``{"host", "boot", "pid", "started"}`` of a process."""

    @classmethod
    def of(cls, pid: int) -> "ProcessIdentity":
        return cls(host=_host_id(), boot=_read("/proc/sys/kernel/random/boot_id"), pid=pid,
                   started=_start_time(pid))

    def alive(self) -> bool:
        """False only when this process ran on this machine and is gone: its pid is free, or is
        now held by another process (other start time), or the machine rebooted (other boot id).
        A process of another machine is presumed alive (its storage's heartbeat decides)."""
        if self.get("host") != _host_id():
            return True
        if self.get("boot") and self["boot"] != _read("/proc/sys/kernel/random/boot_id"):
            return False
        pid = int(self.get("pid", 0))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        if _zombie(pid):  # killed, not yet reaped (a --jobs child its parent has not joined yet)
            return False
        return not self.get("started") or _start_time(pid) in ("", self["started"])


_THIS_PROCESS: dict[int, ProcessIdentity] = {}


def this_process() -> ProcessIdentity:
    """This process's identity, read once per process (three small files; every trial stores it)."""
    pid = os.getpid()
    if pid not in _THIS_PROCESS:
        _THIS_PROCESS.clear()
        _THIS_PROCESS[pid] = ProcessIdentity.of(pid)
    return ProcessIdentity(_THIS_PROCESS[pid])


#: This process's worker id (``host:pid:nonce``).
WORKER_ID = f"{_host_id()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def of_another_live_worker(trial: FrozenTrial) -> bool:
    """Whether ``trial`` (a cell's trial, or a claim) was created by another worker process than
    this one that is alive (see :meth:`ProcessIdentity.alive`)."""
    proc = trial.user_attrs.get(schema.PROC)
    return (trial.user_attrs.get(schema.WORKER) != WORKER_ID and proc is not None
            and ProcessIdentity(proc).alive())


def has_heartbeat(storage: BaseStorage) -> bool:
    """Whether the storage runs Optuna's heartbeat (RDB storages opened with an interval)."""
    interval = getattr(storage, "get_heartbeat_interval", None)
    return interval is not None and interval() is not None


class Heartbeat:
    """Records Optuna heartbeats for one trial from a background thread while ``with`` lasts (a
    no-op on storages without heartbeat). ``beat_now=False`` skips the first beat when the trial
    was just created with one (:func:`ask` with attributes): one database write less per trial."""

    def __init__(self, storage: BaseStorage, trial_id: int, beat_now: bool = True) -> None:
        self.storage, self.trial_id, self.beat_now = storage, trial_id, beat_now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Heartbeat":
        if has_heartbeat(self.storage):
            interval = float(self.storage.get_heartbeat_interval())  # type: ignore[attr-defined]
            if self.beat_now:
                self.storage.record_heartbeat(self.trial_id)  # type: ignore[attr-defined]
            self._thread = threading.Thread(target=self._beat, args=(interval,), daemon=True,
                                            name=f"harness-heartbeat-{self.trial_id}")
            self._thread.start()
        return self

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.storage.record_heartbeat(self.trial_id)  # type: ignore[attr-defined]
            except Exception:  # a lost connection must not kill the trial; the next beat retries
                log.warning("heartbeat for trial id %d failed", self.trial_id, exc_info=True)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def fail_dead_trials(study: optuna.Study, storage: BaseStorage) -> list[int]:
    """Fail every RUNNING trial of ``study`` whose worker is dead, so it is retried and uses no
    budget (:func:`harness.schema.is_killed`); returns their numbers.

    Dead means: no heartbeat for the grace period (storages with heartbeat, any machine: Optuna's
    ``fail_stale_trials``), or a process identity of this machine that is gone (every storage)."""
    dead: list[int] = []
    if has_heartbeat(storage):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        optuna.storages.fail_stale_trials(study)
        dead += [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in before]
    study_id = storage.get_study_id_from_name(study.study_name)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        proc = t.user_attrs.get(schema.PROC)
        if proc is None or ProcessIdentity(proc).alive():
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        try:
            storage.set_trial_user_attr(trial_id, schema.KILLED,
                                        f"worker {t.user_attrs.get(schema.WORKER, '?')} died mid-trial; retried")
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # it finished, or another worker failed it first
        dead.append(t.number)
    return dead


def ask(study: optuna.Study, storage: BaseStorage | None = None, study_id: int | None = None,
        user_attrs: dict[str, Any] | None = None) -> optuna.Trial:
    """``study.ask()``, without Optuna's warning that heartbeats are meant for ``Study.optimize``:
    the harness records the beats itself (:class:`Heartbeat`) around its ask/tell loop. With
    ``user_attrs`` (then ``storage`` and ``study_id`` are the study's), see :func:`ask_with_id`."""
    if not user_attrs:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
            return study.ask()
    assert storage is not None and study_id is not None, "ask with user_attrs needs the study's storage and id"
    return ask_with_id(study, storage, study_id, user_attrs)[0]


def ask_with_id(study: optuna.Study, storage: BaseStorage, study_id: int,
                user_attrs: dict[str, Any]) -> tuple[optuna.Trial, int]:
    """A new trial of ``study`` and its storage id, created RUNNING *with* ``user_attrs`` (the
    worker's identity) in one storage write (the storage's public ``create_new_trial`` with a
    template), its first heartbeat following at once: a worker killed between ``ask`` and a later
    ``set_user_attr`` would otherwise leave a RUNNING trial no one can attribute, holding a budget
    slot forever (the kill -9 fault suite found such trials). Optuna has no public way to do that
    through the study, and ``enqueue_trial`` would let another worker's ``ask`` take the trial
    meant for this one. The id comes back because the caller needs it (its heartbeat) and
    ``optuna.Trial`` keeps it private: looking it up again is one more query per trial."""
    import datetime

    forget_cached_trials(study)
    template = optuna.trial.FrozenTrial(
        number=-1, state=TrialState.RUNNING, value=None, values=None,
        datetime_start=datetime.datetime.now(), datetime_complete=None, params={}, distributions={},
        user_attrs=dict(user_attrs), system_attrs={}, intermediate_values={}, trial_id=-1)
    trial_id = storage.create_new_trial(study_id, template_trial=template)
    if has_heartbeat(storage):
        storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
    if isinstance(storage, optuna.storages.RDBStorage):
        # the study reads an RDB storage through a cache of its own, which must learn of the trial
        # before a sampler stores a parameter on it (it refuses trials it has not seen): listing
        # the running trials brings it up to date
        study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return optuna.Trial(study, trial_id), trial_id


def forget_cached_trials(study: optuna.Study) -> None:
    """What ``Study.ask`` does first: drop the study's per-thread cache of its trials, so the
    sampler of the new trial sees every trial stored until now (other workers' included).

    The one use of an Optuna internal in the harness (Optuna has no public call for it); the test
    ``test_optuna_internals`` fails on an Optuna release where ``Study.ask`` no longer does this."""
    study._thread_local.cached_all_trials = None


def register_worker(storage: BaseStorage, run_id: str) -> int:
    """This process's ordinal in the run: the number of its entry in the run's ``workers`` study,
    handed out atomically by the storage (0 for the run's first process)."""
    study = optuna.create_study(storage=storage, study_name=f"{run_id}/workers", load_if_exists=True)
    trial = ask(study)
    trial.set_user_attr(schema.WORKER, WORKER_ID)
    trial.set_user_attr(schema.PROC, this_process())
    study.tell(trial, state=TrialState.COMPLETE, values=[float(trial.number)])
    return trial.number
