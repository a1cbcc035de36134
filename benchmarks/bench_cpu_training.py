"""Images/s and kernel-time share of CPU training on 64 x 64 images: glibc's plain allocator vs the
harness's setting (:mod:`harness.allocator`), and tcmalloc preloaded where it is installed.

Why: at 64 px (Tiny-ImageNet) one activation buffer of a batch is tens to hundreds of MB. glibc
returns such buffers to the kernel on ``free`` and maps them again, zero-filled, on the next
``malloc``, so each step pays one page fault per 4 KiB page of every large buffer; the harness
raises glibc's mmap/trim thresholds at process start to keep them. This trains the same model on
the same batches in a fresh process per setting (an allocator's state cannot be reset inside a
process): harness's batch pipeline (random crop with 4 px padding + flip, normalisation,
channels_last), three conv-BN-ReLU blocks (``--width``, 2x, 2x filters, the small CNN of
``bench_data_pipeline.py``), SGD with momentum, batch 128. The settings run alternately
(``--repeats``) and medians are reported, with the ratio to plain measured in the same run.

System-time share = kernel CPU time / (user + kernel) of the training process during the timed
steps (``resource.getrusage``, all its threads); page faults are minor faults per step.

``--trial`` measures a whole training trial instead, as the harness runs it: one ``harness bench``
process per run (``--datasets tiny-imagenet``, ``--trials`` trials of ``--epochs`` epochs of the
``--space`` space, random sampler, no pruner) on real-format 64-px data (``--data-dir`` holds
``tiny-imagenet-200/`` in the official layout; it is copied to a temporary folder, since the
loader caches the decoded images next to the data). Kernel share and minor faults are the whole
process's (``os.wait4``: interpreter start, imports, data load, model build, training,
evaluation, exit), split into phases measured inside the process: start-up (interpreter and
imports), data (planning, reading the decoded cache, the train/validation split), setup
(normalisation statistics, the evaluator's warm-up), train (model build and training steps),
evaluate (validation and test passes) and other (the search, storage, reports, exit). Each setting
runs under each ``--load``, alternately: the machine as it is ("quiet"), beside a process spinning
per core ("cpu"), beside a process per core that maps, fills and unmaps memory ("memory": other
work allocating as plain glibc does); load averages are recorded. The first run decodes the JPEGs
(and caches them) and is reported on its own. The goal: a kernel share of at most 8 % under every
load.

Measured on 2 cores (the 10-class subset, 1 trial of 2 epochs, convfc; medians of 2 runs, each
setting alternating with the code from before evaluation ran in the training batch and the
normalisation statistics stopped copying the images as floats): quiet (load 1.2) 4.8 % against
6.4 %, beside the CPU hog 3.5 % against 4.1 %, beside the memory hog 3.5 % against 4.8 %; 310-350 k
faults against 410-470 k; plain glibc 24-34 % (5.5-5.7 M faults). With other jobs on the machine
(load 3-8) 3.0-4.0 % against 4.1-4.2 %. What is left is first touch: ~80 k faults importing torch,
~36 k planning and reading the decoded cache, ~200 k growing the heap to the training step's
peak, none in evaluation. Neither ``M_ARENA_MAX=1`` (thread arenas) nor a 64 MiB ``M_TOP_PAD``
changed it, and neither hog raised it. On 200 classes (``--max-per-class 100``): 2.7 % quiet,
1.8 % beside the CPU hog; reading the decoded cache and the split copy are then the largest part
(1.0-1.4 s). ``OMP_WAIT_POLICY=PASSIVE`` (or ``GOMP_SPINCOUNT=10000``) cut the user time from
26-30 s to 17-18 s beside the hogs or other jobs (OpenMP threads spin-waiting for a core; wall
time 24 s against 32 s) and from 20 s to 18 s on the quiet machine; the same kernel seconds then
make 5-7 %. libgomp reads it when torch is loaded, so it belongs in the environment before that.

Run on purpose (not collected by pytest)::

    .venv/bin/python benchmarks/bench_cpu_training.py                     # width 32, 8 timed steps
    .venv/bin/python benchmarks/bench_cpu_training.py --width 64 --threads 1 --repeats 3
    .venv/bin/python benchmarks/bench_cpu_training.py --trial --data-dir DATA --epochs 2 --repeats 3
    .venv/bin/python benchmarks/bench_cpu_training.py --trial --data-dir DATA \
        --setting passive:OMP_WAIT_POLICY=PASSIVE        # compare one more environment
"""
from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def tcmalloc_path() -> str | None:
    """tcmalloc's shared library (Debian: ``libtcmalloc-minimal4``), if installed."""
    name = ctypes.util.find_library("tcmalloc_minimal") or ctypes.util.find_library("tcmalloc")
    if name is None:
        return None
    for folder in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                   "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"):
        if (Path(folder) / name).exists():
            return str(Path(folder) / name)
    return name


def child(args: argparse.Namespace) -> dict:
    """Train in this (fresh) process under the allocator setting its environment selects."""
    from harness.allocator import configure

    setting = configure()  # as every harness process that trains does at start
    import torch
    from bench_data_pipeline import small_cnn
    from torch import nn

    from harness.training.batches import DeviceData, Normaliser, iterate_batches

    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.warmup + args.steps
    gen = torch.Generator().manual_seed(0)
    n = steps * args.batch_size
    images = torch.randint(0, 256, (n, 3, args.size, args.size), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, args.classes, (n,), generator=gen)
    batches = iterate_batches(DeviceData.create(images, labels, "cpu"), args.batch_size, Normaliser.fit(images),
                              shuffle=True, augment=True, padding=4, generator=torch.Generator().manual_seed(0),
                              channels_last=True)
    torch.manual_seed(0)
    model = small_cnn(args.classes, args.width).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for step, (x, y) in enumerate(batches):
        if step == args.warmup:
            start, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    seconds, end = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    user, system = end.ru_utime - usage.ru_utime, end.ru_stime - usage.ru_stime
    return {"setting": setting, "images_per_s": args.steps * args.batch_size / seconds,
            "sys_share": system / max(user + system, 1e-9),
            "faults_per_step": (end.ru_minflt - usage.ru_minflt) / args.steps,
            "seconds": seconds, "threads": torch.get_num_threads(), "loss": float(loss.detach())}


def run_child(argv: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, str(Path(__file__)), "--child", *argv], capture_output=True, text=True,
                         env={**os.environ, **env}, check=False)
    if out.returncode:
        raise SystemExit(f"child failed ({env}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- whole trials ------------------------------------------------------------------------------

PHASES = ("start-up", "data", "setup", "train", "evaluate", "other")
GOAL = 0.08  # kernel share of a whole trial, under every load


def _usage() -> tuple[float, float, float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime, r.ru_stime, r.ru_minflt


class Phases:
    """CPU time and minor faults of this process, charged to the phase running when they occur."""

    def __init__(self) -> None:
        self.totals = {name: [0.0, 0.0, 0.0, 0] for name in PHASES}
        self.current = "start-up"
        self.last = (_PROCESS_START, 0.0, 0.0, 0)  # rusage counts from the process's start

    def enter(self, name: str) -> str:
        """Charge the time since the last switch to the current phase, start ``name``; returns the
        phase it left."""
        now, left = _usage(), self.current
        total = self.totals[left]
        for i in range(4):
            total[i] += now[i] - self.last[i]
        self.last, self.current = now, name
        return left

    def wrap(self, owner: Any, attribute: str, name: str, *, only_in: str | None = None,
             then: str | None = None) -> None:
        """Run ``owner.attribute`` (a function or method) as phase ``name`` (only when called during
        phase ``only_in``, if given), then go on with phase ``then`` (default: the one it left)."""
        original = getattr(owner, attribute)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if only_in is not None and self.current != only_in:
                return original(*args, **kwargs)
            left = self.enter(name)
            try:
                return original(*args, **kwargs)
            finally:
                self.enter(then or left)

        setattr(owner, attribute, wrapped)

    def to_json(self) -> dict[str, dict[str, float]]:
        return {name: {"wall": w, "user": u, "sys": s, "faults": f} for name, (w, u, s, f) in self.totals.items()}


_PROCESS_START = time.perf_counter()  # the wall clock of start-up starts at the import of this file


def trial_child(harness_argv: list[str]) -> dict:
    """Run ``harness bench`` in this (fresh) process, as the ``harness`` command does, and measure
    its phases (the parent adds the interpreter's start and the exit, which it sees through wait4)."""
    phases = Phases()
    import torch  # noqa: F401  (start-up: what every harness process that trains imports)

    from harness import allocator
    from harness.cli import main as harness_main
    from harness.training import engine

    phases.enter("data")
    # the evaluator is built once the dataset is loaded and split; it fits the normalisation and
    # warms up; trials run through evaluate(), which evaluates through evaluate_accuracy()
    phases.wrap(engine.TrainingEvaluator, "__init__", "setup", then="other")
    phases.wrap(engine.TrainingEvaluator, "evaluate", "train")
    phases.wrap(engine, "evaluate_accuracy", "evaluate", only_in="train")
    code = harness_main(["bench", *harness_argv])
    phases.enter("other")
    if code:
        raise SystemExit(f"harness bench exited with {code}")
    return {"setting": allocator.current(), "threads": torch.get_num_threads(), "phases": phases.to_json(),
            "in_process": list(_usage()[1:])}


HOGS = {
    # other work that only computes
    "cpu": "while True: pass",
    # other work that allocates as glibc does by default (or as a data loader does): fresh memory
    # mapped, filled and unmapped in a loop, so the kernel zeroes and maps pages all the time
    "memory": ("import mmap\nblock = b'x' * (1 << 20)\nwhile True:\n    m = mmap.mmap(-1, 256 << 20)\n"
               "    for _ in range(256):\n        m.write(block)\n    m.close()"),
}


class Hog:
    """One process per core beside the measured one, running ``HOGS[kind]``: a busy machine."""

    def __init__(self, kind: str, cores: int) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-c", HOGS[kind]]) for _ in range(cores)]

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait()


def _spawn_measured(argv: list[str], env: dict[str, str]) -> tuple[str, str, int, Any]:
    """Run ``argv`` to its end: (stdout, stderr, exit code, that process's rusage from wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env={**os.environ, **env})
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen
        out.seek(0)
        err.seek(0)
        return out.read(), err.read(), proc.returncode, usage


def run_trial(harness_argv: list[str], env: dict[str, str], hog_kind: str | None) -> dict:
    """One ``harness bench`` process under ``env``, beside a hog of ``hog_kind`` if given: the whole
    process's user/kernel time and minor faults, and its phases."""
    hog = Hog(hog_kind, os.cpu_count() or 1) if hog_kind else None
    try:
        load = os.getloadavg()[0]
        started = time.perf_counter()
        stdout, stderr, code, usage = _spawn_measured(
            [sys.executable, str(Path(__file__)), "--trial-child", "--", *harness_argv], env)
        wall = time.perf_counter() - started
        load = max(load, os.getloadavg()[0])
    finally:
        if hog:
            hog.stop()
    if code:
        raise SystemExit(f"trial failed ({env}):\n{stderr[-4000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    user, system = usage.ru_utime, usage.ru_stime
    # what the process did outside its measured phases (the interpreter's start, the exit)
    in_user, in_sys, in_faults = result.pop("in_process")
    other = result["phases"]["other"]
    other["user"] += user - in_user
    other["sys"] += system - in_sys
    other["faults"] += usage.ru_minflt - in_faults
    return {**result, "load": hog_kind or "quiet", "user": user, "sys": system,
            "sys_share": system / max(user + system, 1e-9), "faults": usage.ru_minflt, "wall": wall, "load1": load}


def prepared_data(data_dir: Path, work: Path) -> Path:
    """A copy of ``data_dir``'s ``tiny-imagenet-200`` in ``work``, without any decoded cache: the
    first run decodes, and nothing is written next to the user's data."""
    root = data_dir / "tiny-imagenet-200"
    if not (root / "wnids.txt").is_file():
        raise SystemExit(f"--data-dir {data_dir}: no tiny-imagenet-200/wnids.txt (the official layout)")
    shutil.copytree(root, work / "data" / "tiny-imagenet-200", ignore=shutil.ignore_patterns(".harness-cache"))
    return work / "data"


def parse_setting(text: str) -> tuple[str, dict[str, str]]:
    """``NAME:VAR=VALUE[,VAR=VALUE...]`` (``--setting``) as (name, environment)."""
    name, _, assignments = text.partition(":")
    env = dict(item.split("=", 1) for item in assignments.split(",") if "=" in item)
    if not name or not env:
        raise SystemExit(f"--setting {text!r}: expected NAME:VAR=VALUE[,VAR=VALUE...]")
    return name, env


def trial_main(args: argparse.Namespace, settings: dict[str, dict[str, str]]) -> dict:
    loads = [None if load == "quiet" else load for load in args.load.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-cpu-trial-") as tmp:
        work = Path(tmp)
        data = prepared_data(Path(args.data_dir), work)
        runs: list[dict] = []

        def harness_argv(tag: str) -> list[str]:
            argv = ["--datasets", "tiny-imagenet", "--data-dir", str(data), "--spaces", args.space,
                    "--algorithms", "sampler", "--samplers", "random", "--pruners", "none", "--seeds", "0",
                    "--trials", str(args.trials), "--epochs", str(args.epochs), "--reporters", "summary",
                    "--results", str(work / "results"), "--run-id", tag, "--no-progress"]
            if args.threads:
                argv += ["--threads", str(args.threads)]
            if args.max_per_class:
                argv += ["--max-per-class", str(args.max_per_class)]
            return argv

        print(f"whole trials: tiny-imagenet from {args.data_dir}, {args.trials} trial(s) of {args.epochs} "
              f"epoch(s), space {args.space}, {os.cpu_count()} cores, {args.repeats} repeats, load {args.load}",
              flush=True)
        first = run_trial(harness_argv("first"), settings["harness"], None)
        print(f"first run (decodes the JPEGs, writes the cache): {_line(first)}", flush=True)
        for repeat in range(args.repeats):
            for hog in loads:
                for name, env in settings.items():
                    result = run_trial(harness_argv(f"r{repeat}-{name}-{hog}"), env, hog)
                    result["name"] = name
                    runs.append(result)
                    print(f"repeat {repeat + 1} {result['load']:6s} {name:9s} {_line(result)}", flush=True)
    summary = summarise(runs)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "first": first, "summary": summary, "runs": runs},
                                              indent=2))
    return summary


def _line(r: dict) -> str:
    return (f"sys {100 * r['sys_share']:4.1f} %  user {r['user']:6.1f} s  sys {r['sys']:5.2f} s  "
            f"{r['faults'] / 1e3:7.0f} k faults  wall {r['wall']:6.1f} s  load {r['load1']:4.1f}")


def summarise(runs: list[dict]) -> dict:
    """Medians per (load, setting), whole process and per phase; printed as two tables."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["load"], r["name"]), []).append(r)

    def median(rs: list[dict], *path: str) -> float:
        values: list[float] = []
        for r in rs:
            value: Any = r
            for key in path:
                value = value[key]
            values.append(value)
        return statistics.median(values)

    summary: dict = {}
    print(f"{'load':6s} {'setting':9s} {'sys %':>6s} {'user s':>7s} {'sys s':>6s} {'faults':>8s} {'wall s':>7s} "
          f"{'load1':>5s}  goal <= {100 * GOAL:.0f} %")
    for (load, name), rs in groups.items():
        row: dict[str, Any] = {key: median(rs, key) for key in ("sys_share", "user", "sys", "faults", "wall", "load1")}
        row["phases"] = {phase: {key: median(rs, "phases", phase, key) for key in ("user", "sys", "faults")}
                         for phase in PHASES}
        summary[f"{load}/{name}"] = row
        print(f"{load:6s} {name:9s} {100 * row['sys_share']:6.1f} {row['user']:7.1f} {row['sys']:6.2f} "
              f"{row['faults'] / 1e3:7.0f}k {row['wall']:7.1f} {row['load1']:5.1f}  "
              f"{'met' if row['sys_share'] <= GOAL else 'MISSED'}")
    print("per phase: kernel s / user s / k faults (medians)")
    print(f"{'load':6s} {'setting':9s} " + " ".join(f"{p:>19s}" for p in PHASES))
    for key, row in summary.items():
        load, name = key.split("/")
        print(f"{load:6s} {name:9s} " + " ".join(
            f"{ph['sys']:5.2f}/{ph['user']:6.1f}/{ph['faults'] / 1e3:5.0f}" for ph in row["phases"].values()))
    return summary


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["--trial-child", "--"]:
        sys.path.insert(0, str(HERE))
        print(json.dumps(trial_child(argv[2:])))
        return {}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    parser.add_argument("--width", type=int, default=32, help="filters of the first conv block (default 32)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per process")
    parser.add_argument("--warmup", type=int, default=2, help="steps before the timing")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating repeats; medians reported")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME:VAR=VALUE[,...]",
                        help="one more setting to compare: the harness's, with these environment variables")
    whole = parser.add_argument_group("whole trials (--trial)")
    whole.add_argument("--trial", action="store_true", help="measure whole harness bench trials on real data")
    whole.add_argument("--data-dir", help="folder holding tiny-imagenet-200/ in the official layout")
    whole.add_argument("--trials", type=int, default=1, help="trials per process (default 1)")
    whole.add_argument("--epochs", type=int, default=2, help="epochs per trial (default 2)")
    whole.add_argument("--space", default="convfc", help="search space (default convfc)")
    whole.add_argument("--max-per-class", type=int, default=None, help="train images per class (default: all)")
    whole.add_argument("--load", default="quiet,cpu,memory",
                       help="comma-separated, run alternately: quiet (the machine as it is), cpu (beside a process "
                            "spinning per core), memory (beside a process per core that maps, fills and unmaps "
                            "memory); default: all three")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.path.insert(0, str(HERE))
        print(json.dumps(child(args)))
        return {}

    passed = [f"--{key.replace('_', '-')}={value}" for key, value in vars(args).items()
              if key in ("size", "width", "batch_size", "classes", "steps", "warmup", "threads") and value is not None]
    settings = {"plain": {"HARNESS_ALLOCATOR": "plain", "LD_PRELOAD": ""}, "harness": {"LD_PRELOAD": ""}}
    tcmalloc = tcmalloc_path()
    if tcmalloc:
        settings["tcmalloc"] = {"LD_PRELOAD": tcmalloc}
    for text in args.setting:
        name, env = parse_setting(text)
        settings[name] = {"LD_PRELOAD": "", **env}
    if args.trial:
        if not args.data_dir:
            parser.error("--trial needs --data-dir")
        unknown = set(args.load.split(",")) - {"quiet", *HOGS}
        if unknown:
            parser.error(f"--load {args.load}: unknown {', '.join(sorted(unknown))} (quiet, {', '.join(HOGS)})")
        return trial_main(args, settings)
    print(f"{args.size} px, batch {args.batch_size}, width {args.width}, {args.steps} timed steps, "
          f"{args.repeats} repeats{'' if tcmalloc else ' (tcmalloc not installed: skipped)'}", flush=True)
    runs: dict[str, list[dict]] = {name: [] for name in settings}
    for repeat in range(args.repeats):
        for name, env in settings.items():
            result = run_child(passed, env)
            runs[name].append(result)
            print(f"repeat {repeat + 1} {name:9s} {result['images_per_s']:7.1f} img/s  "
                  f"sys {100 * result['sys_share']:4.1f} %  {result['faults_per_step']:9.0f} faults/step  "
                  f"({result['setting']['allocator']}, mallopt {result['setting']['mallopt']})", flush=True)
    summary = {name: {key: statistics.median(r[key] for r in rs) for key in ("images_per_s", "sys_share",
                                                                            "faults_per_step")}
               for name, rs in runs.items()}
    print(f"{'setting':9s} {'img/s':>8s} {'sys %':>6s} {'faults/step':>12s} {'vs plain':>9s}")
    for name, s in summary.items():
        print(f"{name:9s} {s['images_per_s']:8.1f} {100 * s['sys_share']:6.1f} {s['faults_per_step']:12.0f} "
              f"{s['images_per_s'] / summary['plain']['images_per_s']:8.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "summary": summary, "runs": runs}, indent=2))
    return summary


if __name__ == "__main__":
    main()
