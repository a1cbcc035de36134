"""``kill -9`` of a worker process *in the middle of a trial*, without a race.

A test that reads "trial 12 is RUNNING in process P" and then kills P races P: by the kill, P may
have told trial 12 and be between trials (no trial is left RUNNING, so none is marked killed), or
have spent its cell's budget and exited (the kill fails, or lands on a zombie). So the kill here
freezes P first (``SIGSTOP``), reads the storage again, and kills P only if a trial of P is still
RUNNING; otherwise P runs on and another look is taken.

A frozen process that holds a file lock (a journal append in flight) would block that second read,
so such a process is let go at once (its flock shows in ``/proc/locks``).
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["kill_mid_trial"]


def _holds_a_file_lock(pid: int) -> bool:
    """Whether ``pid`` holds, or waits for, a ``flock``/``fcntl`` lock (``/proc/locks``)."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = [f for f in line.split() if f != "->"]  # "->": a waiter
        if len(fields) > 4 and fields[4] == str(pid):
            return True
    return False


def kill_mid_trial(running_pids: Callable[[], Iterable[int]], may: Callable[[int], bool] = lambda pid: True,
                   seconds: float = 300, check: Callable[[], None] = lambda: None) -> int:
    """Kill with ``SIGKILL`` a process that has a trial RUNNING in the storage at the instant of
    the kill, and return its pid.

    ``running_pids()`` reads the storage: the pids of the workers of its RUNNING trials. ``may(pid)``
    says whether the test may kill that process (a pid seen in the storage may have been reused).
    ``check()`` is called before each look (to fail early, e.g. when the run has ended). Fails the
    test after ``seconds`` without a kill."""
    deadline = time.monotonic() + seconds
    missed: dict[str, int] = {"no trial running": 0, "not to be killed": 0, "ended": 0, "holding a file lock": 0,
                              "between trials once frozen": 0}

    def why() -> str:
        return "; ".join(f"{n} x {reason}" for reason, n in missed.items() if n) or "no look taken"

    while True:
        try:
            check()
        except AssertionError as exc:
            raise AssertionError(f"{exc} (looks that killed nothing: {why()})") from None
        pids = list(running_pids())
        missed["no trial running"] += not pids
        for pid in pids:
            try:
                if not may(pid):
                    missed["not to be killed"] += 1
                    continue
                os.kill(pid, signal.SIGSTOP)
            except (FileNotFoundError, ProcessLookupError):
                missed["ended"] += 1
                continue
            killed = False
            try:
                if _holds_a_file_lock(pid):
                    missed["holding a file lock"] += 1
                elif pid in set(running_pids()):
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                else:
                    missed["between trials once frozen"] += 1
            finally:
                if not killed:
                    os.kill(pid, signal.SIGCONT)  # it runs on
            if killed:
                return pid
        assert time.monotonic() < deadline, f"no worker could be killed in the middle of a trial: {why()}"
        time.sleep(0.05)
