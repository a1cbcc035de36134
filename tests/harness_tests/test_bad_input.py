"""Every bad input is one line: exit code 2, exactly one stderr line ``harness: error: ...`` that
names the culprit, and nothing written or changed under the results folder.

The table covers malformed options (argparse's type and choice errors included), out-of-range
values, unsafe run ids, bad storage URLs, unknown components, plugin options, and damaged runs
(missing journal, torn or corrupt journal, corrupt ``run.json``, a run id reused with other
settings). The damaged runs are copies of one real tabular run made once for the module; the
results folder is fingerprinted (every file's bytes and mtime) before and after each case.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from harness_plugins.datasets._nb201_synthetic import write_synthetic_table

from harness.cli import main

TABLE_RUN = ["--datasets", "nb201-cifar10", "--spaces", "nb201", "--algorithms", "random", "--samplers", "random",
             "--pruners", "none", "--seeds", "0", "--trials", "3", "--no-progress"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A results folder holding one finished tabular run (``base``) and damaged copies of it."""
    root = tmp_path_factory.mktemp("bad_input")
    table = write_synthetic_table(root / "nb201.csv")
    results = root / "results"
    assert main(["bench", "--results", str(results), "--table", str(table), "--run-id", "base", *TABLE_RUN]) == 0
    base = results / "base"
    for name in ("nojournal", "torn", "corruptline", "corruptjson", "emptyjson"):
        shutil.copytree(base, results / name)
    (results / "nojournal" / "optuna.journal").unlink()
    torn = results / "torn" / "optuna.journal"
    torn.write_bytes(torn.read_bytes()[:-7])  # cut mid-line
    corrupt = results / "corruptline" / "optuna.journal"
    lines = corrupt.read_bytes().split(b"\n")
    lines[5] = lines[5][: len(lines[5]) // 2] + b"#garbage"
    corrupt.write_bytes(b"\n".join(lines))
    (results / "corruptjson" / "run.json").write_text('{"run_id": "corruptjson", "config": {')
    (results / "emptyjson" / "run.json").write_text("")
    (root / "a_file").write_text("not a folder")
    return {"root": root, "results": results, "table": table}


def fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file's bytes and mtime; a journal's ``.lock`` file by its bytes only (checking a
    journal takes its lock, which writes the holder's name and clears it again)."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                         0 if p.name.endswith(".lock") else p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


B = "bench"
T = "--table {table}"
NB = " ".join(TABLE_RUN)
NB_RUN = f"{B} {NB} {T}"  # a valid tabular run: add one bad option to it


def with_algorithm(name: str) -> str:
    return NB_RUN.replace("--algorithms random", f"--algorithms {name}")


#: (case id, command line with {results}/{table}/{root} placeholders, text the error line must contain)
CASES: list[tuple[str, str, str]] = [
    # argparse: types, choices, unknown options, missing arguments (one line, not a usage block)
    ("trials-not-int", f"{NB_RUN} --trials x", "--trials"),
    ("epochs-float", f"{NB_RUN} --epochs 1.5", "--epochs"),
    ("timeout-not-number", f"{NB_RUN} --timeout abc", "--timeout"),
    ("jobs-not-int", f"{NB_RUN} --jobs two", "--jobs"),
    ("threads-not-int", f"{NB_RUN} --threads many", "--threads"),
    ("val-fraction-not-number", f"{NB_RUN} --val-fraction half", "--val-fraction"),
    ("split-seed-not-int", f"{NB_RUN} --split-seed x", "--split-seed"),
    ("max-per-class-not-int", f"{NB_RUN} --max-per-class 1e3", "--max-per-class"),
    ("seeds-letters", f"{NB_RUN} --seeds a", "seeds"),
    ("seeds-bad-range", f"{NB_RUN} --seeds 3-x", "seeds"),
    ("seeds-empty", f"{NB_RUN} --seeds=", "seeds"),
    ("seeds-negative", f"{NB_RUN} --seeds=-1", "seeds"),
    ("samplers-empty", f"{NB_RUN} --samplers=,", "--samplers"),
    ("unknown-option", f"{NB_RUN} --frobnicate 3", "--frobnicate"),
    ("unknown-command", "frobnicate", "frobnicate"),
    ("report-without-run", "report", "run"),
    ("repair-without-run", "repair", "run"),
    ("plugins-empty", "--plugins=, list", "--plugins"),
    ("list-unknown-option", "list --bogus", "--bogus"),
    ("rl-mode-choice", f"{NB_RUN} --rl-mode nope", "--rl-mode"),
    ("rea-removal-choice", f"{NB_RUN} --rea-removal best", "--rea-removal"),
    ("cifar100-labels-choice", f"{NB_RUN} --cifar100-labels medium", "--cifar100-labels"),
    ("nsga-population-not-int", f"{NB_RUN} --nsga-population x", "--nsga-population"),
    # values out of range
    ("trials-negative", f"{NB_RUN} --trials -3", "--trials"),
    ("trials-zero-without-timeout", f"{NB_RUN} --trials 0", "--trials"),
    ("epochs-zero", f"{NB_RUN} --epochs 0", "--epochs"),
    ("timeout-negative", f"{NB_RUN} --timeout -5", "--timeout"),
    ("timeout-zero", f"{NB_RUN} --timeout 0", "--timeout"),
    ("timeout-nan", f"{NB_RUN} --timeout nan", "--timeout"),
    ("timeout-inf", f"{NB_RUN} --timeout inf", "--timeout"),
    ("val-fraction-above-one", f"{NB_RUN} --val-fraction 1.5", "--val-fraction"),
    ("val-fraction-zero", f"{NB_RUN} --val-fraction 0", "--val-fraction"),
    ("val-fraction-nan", f"{NB_RUN} --val-fraction nan", "--val-fraction"),
    ("split-seed-negative", f"{NB_RUN} --split-seed -1", "--split-seed"),
    ("seed-too-large", f"{NB_RUN} --seeds 4294967296", "--seeds"),
    ("jobs-zero", f"{NB_RUN} --jobs 0", "--jobs"),
    ("threads-zero", f"{NB_RUN} --threads 0", "--threads"),
    ("max-per-class-zero", f"{NB_RUN} --max-per-class 0", "--max-per-class"),
    ("device-unknown", f"{NB_RUN} --device tpu", "--device"),
    ("device-missing-gpu", f"{NB_RUN} --device cuda:99", "--device"),
    # --fix
    ("fix-lr-inf", f"{NB_RUN} --fix lr=inf", "lr"),
    ("fix-lr-nan", f"{NB_RUN} --fix lr=nan", "lr"),
    ("fix-lr-negative", f"{NB_RUN} --fix lr=-1", "lr"),
    ("fix-lr-text", f"{NB_RUN} --fix lr=fast", "lr"),
    ("fix-unknown-name", f"{NB_RUN} --fix dropout=0.5", "dropout"),
    ("fix-without-value", f"{NB_RUN} --fix lr", "lr"),
    ("fix-batch-size-zero", f"{NB_RUN} --fix batch_size=0", "batch_size"),
    ("fix-batch-size-float", f"{NB_RUN} --fix batch_size=1.5", "batch_size"),
    ("fix-optimizer-unknown", f"{NB_RUN} --fix optimizer=rmsprop", "optimizer"),
    ("fix-schedule-unknown", f"{NB_RUN} --fix schedule=step", "schedule"),
    ("fix-momentum-above-one", f"{NB_RUN} --fix momentum=2", "momentum"),
    ("fix-label-smoothing-one", f"{NB_RUN} --fix label_smoothing=1", "label_smoothing"),
    ("fix-nesterov-maybe", f"{NB_RUN} --fix nesterov=maybe", "nesterov"),
    ("fix-weight-decay-negative", f"{NB_RUN} --fix weight_decay=-0.1", "weight_decay"),
    ("fix-twice", f"{NB_RUN} --fix lr=0.1 --fix lr=0.2", "lr"),
    # plugin options, refused before any cell runs
    ("nsga-population-zero", f"{B} --samplers nsga2 --nsga-population 0 --no-progress", "--nsga-population"),
    ("nsga-population-one", f"{B} --samplers nsga2 --nsga-population 1 --no-progress", "--nsga-population"),
    ("nsga-population-negative", f"{B} --samplers nsga3 --nsga-population=-3 --no-progress", "--nsga-population"),
    ("rea-population-zero", f"{with_algorithm('rea')} --rea-population 0", "--rea-population"),
    ("npenas-init-zero", f"{with_algorithm('npenas-np')} --npenas-init 0", "--npenas-init"),
    ("nb201-channels-zero", f"{NB_RUN} --nb201-channels 0", "--nb201-channels"),
    ("rea-tournament-above-population", f"{with_algorithm('rea')} --rea-tournament 40", "--rea-tournament"),
    ("rl-weight-lr-negative", f"{with_algorithm('rl')} --rl-weight-lr=-1", "--rl-weight-lr"),
    ("rl-epochs-zero", f"{with_algorithm('rl')} --rl-epochs 0", "--rl-epochs"),
    ("gradient-lambda-nan", f"{with_algorithm('gradient')} --gradient-lambda nan", "--gradient-lambda"),
    ("gradient-arch-lr-inf", f"{with_algorithm('gradient')} --gradient-arch-lr inf", "--gradient-arch-lr"),
    ("gradient-weight-lr-zero", f"{with_algorithm('gradient')} --gradient-weight-lr 0", "--gradient-weight-lr"),
    ("mbconv-layers-zero", f"{B} --spaces mbconv --samplers random --pruners none --mbconv-layers 0 --no-progress",
     "--mbconv-layers"),
    ("imagenet16-classes-zero", f"{B} --datasets imagenet16-120 --imagenet16-classes 0 --no-progress",
     "--imagenet16-classes"),
    ("imagefolder-resolution-zero", f"{B} --datasets imagefolder --imagefolder-resolution 0 --no-progress",
     "--imagefolder-resolution"),
    ("convfc-max-conv-negative", f"{B} --samplers random --pruners none --convfc-max-conv=-1 --no-progress",
     "--convfc-max-conv"),
    ("table-missing", f"{B} {NB} --table {{root}}/no-such.csv", "no-such.csv"),
    # a reporter option that can never fit the grid, refused before the grid runs, not after
    ("baseline-no-such-strategy", f"{NB_RUN} --baseline nosuch", "--baseline 'nosuch'"),
    ("baseline-sampler-not-in-grid", f"{NB_RUN} --baseline tpe", "--baseline 'tpe'"),
    ("baseline-with-only-compare", f"{NB_RUN} --reporters compare --baseline nosuch", "nosuch"),
    # run ids that would escape --results
    ("run-id-parent", f"{NB_RUN} --run-id ../../etc", "--run-id"),
    ("run-id-absolute", f"{NB_RUN} --run-id /tmp/abs", "--run-id"),
    ("run-id-empty", f"{NB_RUN} --run-id=", "--run-id"),
    ("run-id-separator", f"{NB_RUN} --run-id a/b", "--run-id"),
    ("run-id-hidden", f"{NB_RUN} --run-id .hidden", "--run-id"),
    ("run-id-space", f"{NB_RUN} --run-id=a\tb", "--run-id"),
    ("run-id-dotdot-inside", f"{NB_RUN} --run-id x..y", "--run-id"),
    ("report-run-id-parent", "report ../../etc", "--run-id"),
    ("worker-run-id-parent", f"worker {NB} {T} --run-id ../x", "--run-id"),
    # storage URLs, checked before anything is written
    ("storage-no-scheme", f"{NB_RUN} --storage foo.db", "--storage"),
    ("storage-unknown-database", f"{NB_RUN} --storage ftp://host/x", "--storage"),
    ("storage-journal-empty", f"{NB_RUN} --storage journal:", "--storage"),
    ("storage-sqlite-no-path", f"{NB_RUN} --storage sqlite://", "--storage"),
    ("storage-journal-is-folder", f"{NB_RUN} --storage journal:{{root}}", "--storage"),
    ("storage-sqlite-under-file", f"{NB_RUN} --storage sqlite:///{{root}}/a_file/x.db", "--storage"),
    ("storage-postgres-down", f"{NB_RUN} --storage postgresql://u:p@127.0.0.1:1/db", "--storage"),
    ("worker-storage-bad", f"worker {NB} {T} --storage nonsense", "--storage"),
    ("seeds-reversed-range", f"{NB_RUN} --seeds 3-1", "range 3-1 is reversed"),
    ("grid-all-not-applicable", f"{B} --algorithms npenas-np --spaces convfc --no-progress", "no cell of the grid can run"),
    ("worker-no-run-to-join", f"worker {NB} {T} --run-id nothing-here", "no run nothing-here"),
    # unknown components
    ("unknown-dataset", f"{B} --datasets nosuch --no-progress", "nosuch"),
    ("unknown-space", f"{B} --spaces nosuch --no-progress", "nosuch"),
    ("unknown-algorithm", f"{B} --algorithms nosuch --no-progress", "nosuch"),
    ("unknown-sampler", f"{B} --samplers nosuch --no-progress", "nosuch"),
    ("unknown-pruner", f"{B} --pruners nosuch --no-progress", "nosuch"),
    ("unknown-reporter", f"{NB_RUN} --reporters nosuch", "nosuch"),
    ("unknown-plugin", "--plugins nosuch list", "nosuch"),
    ("unknown-generator", f"{NB_RUN} --generators nosuch", "nosuch"),
    ("unknown-generator-data", f"{NB_RUN} --generator-data nosuch", "nosuch"),
    ("heartbeat-zero", f"{NB_RUN} --heartbeat 0", "--heartbeat"),
    ("heartbeat-not-int", f"{NB_RUN} --heartbeat soon", "--heartbeat"),
    ("results-is-a-file", f"{B} {NB} {T} --results {{root}}/a_file", "a_file"),
    # damaged runs: refuse, never overwrite the exported tables
    ("report-unknown-run", "report nosuchrun", "nosuchrun"),
    ("report-missing-journal", "report nojournal", "optuna.journal"),
    ("report-torn-journal", "report torn", "line"),
    ("report-corrupt-line", "report corruptline", "line 6"),
    ("report-corrupt-run-json", "report corruptjson", "run.json"),
    ("report-empty-run-json", "report emptyjson", "run.json"),
    ("bench-torn-journal", f"{NB_RUN} --run-id torn", "line"),
    ("bench-corrupt-line", f"{NB_RUN} --run-id corruptline", "line 6"),
    ("bench-corrupt-run-json", f"{NB_RUN} --run-id corruptjson", "run.json"),
    ("bench-reused-run-id", f"{B} {NB} {T} --trials 5 --run-id base", "base"),
    ("repair-unknown-run", "repair nosuchrun", "nosuchrun"),
    ("repair-missing-journal", "repair nojournal", "optuna.journal"),
]


def test_the_table_is_large_and_unique() -> None:
    assert len(CASES) >= 60
    assert len({case for case, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("command", "culprit"), [(c, k) for _, c, k in CASES], ids=[i for i, _, _ in CASES])
def test_bad_input_is_one_line(world: dict[str, Path], capsys: pytest.CaptureFixture[str], command: str,
                               culprit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    results = world["results"]
    monkeypatch.chdir(world["root"])
    before = fingerprint(results)
    argv = [part.format(table=world["table"], root=world["root"]) for part in command.split(" ")]
    if argv[0] in ("bench", "worker", "report", "repair") and "--results" not in argv:
        argv += ["--results", str(results)]
    code = main(argv)
    _, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2, f"exit {code}; stderr: {err}"
    assert len(lines) == 1, err
    assert lines[0].startswith("harness: error: ")
    assert culprit in lines[0]
    assert fingerprint(results) == before
    assert not (world["root"] / "etc").exists() and not Path("/tmp/abs").exists()
