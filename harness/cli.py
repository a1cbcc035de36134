"""The ``harness`` command: ``bench``, ``worker``, ``list``, ``report``.

Parsing is two-pass, as in pytest: ``--plugins`` is read first, the selected plugins are loaded,
they add their options (``harness_addoption``), then the whole command line is parsed. Errors a
user can fix print one line, ``harness: error: ...``, and exit with code 2.
"""
from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from harness import __version__
from harness.errors import UsageError

__all__ = ["DEFAULTS", "EXIT_REPORTER_FAILED", "Parser", "ReportOutcome", "build_parser", "default_options", "main"]

#: Exit code when every result is stored but a reporter raised: its report is missing, the others
#: and the tables are written (3, run incomplete, takes precedence: the rerun reports again).
EXIT_REPORTER_FAILED = 4


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: a bad type, choice or unknown option raises
    :class:`UsageError` (``harness: error: ...``, exit 2) instead of printing the usage block."""

    def error(self, message: str) -> Any:
        raise UsageError(message)

#: Each axis's default when not given; names a ``--plugins`` selection did not load are dropped,
#: and an axis left empty that way takes every loaded component of its kind.
DEFAULTS = {
    "dataset": ["digits"],
    "generator": ["manual"],
    "space": ["convfc"],
    "algorithm": ["sampler"],
    "sampler": ["tpe", "random", "qmc", "nsga2"],
    "pruner": ["none", "median", "sha"],
    "reporter": ["summary", "importance", "compare"],
}
DEFAULT_SEEDS = "0,1"
DEFAULT_TRIALS = 16  # more than TPE's 10 start-up trials, so TPE differs from random search
DEFAULT_EPOCHS = 4


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return names


def _seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-4`` (inclusive) or a mix."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            if sep and int(hi) < int(lo):
                raise argparse.ArgumentTypeError(f"invalid seeds {text!r}: the range {part.strip()} is reversed "
                                                  f"(write {int(hi)}-{int(lo)})")
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seeds {text!r}: use e.g. 0,1,2 or 0-4") from None
    return list(dict.fromkeys(seeds))


def _run_options(parser: argparse.ArgumentParser) -> None:
    axes = parser.add_argument_group("grid axes (comma-separated names; see `harness list`)")
    axes.add_argument("--datasets", type=_names, help=f"default: {','.join(DEFAULTS['dataset'])}")
    axes.add_argument("--generators", type=_names,
                      help=f"search-space generators applied to each space; default: {','.join(DEFAULTS['generator'])}")
    axes.add_argument("--spaces", type=_names, help=f"(base) search spaces; default: {','.join(DEFAULTS['space'])}")
    axes.add_argument("--algorithms", type=_names, help=f"default: {','.join(DEFAULTS['algorithm'])}")
    axes.add_argument("--samplers", type=_names, help=f"default: {','.join(DEFAULTS['sampler'])}")
    axes.add_argument("--pruners", type=_names, help=f"default: {','.join(DEFAULTS['pruner'])}")
    axes.add_argument("--seeds", type=_seeds, default=_seeds(DEFAULT_SEEDS), help=f"default: {DEFAULT_SEEDS}")
    budget = parser.add_argument_group("budget per cell")
    budget.add_argument("--trials", type=int, default=DEFAULT_TRIALS,
                        help=f"finished trials per cell (default {DEFAULT_TRIALS})")
    budget.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                        help=f"training epochs per trial (default {DEFAULT_EPOCHS})")
    budget.add_argument("--timeout", type=float, default=None, help="wall seconds per cell (trials + search)")
    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", default="data", help="where datasets are read from (default ./data)")
    data.add_argument("--download", action="store_true", help="allow datasets to download when missing")
    data.add_argument("--val-fraction", type=float, default=0.2,
                      help="share of each train class held out for validation (default 0.2)")
    data.add_argument("--split-seed", type=int, default=0, help="seed of the train/validation split (default 0)")
    data.add_argument("--max-per-class", type=int, default=None, help="subsample train images per class")
    data.add_argument("--generator-data", default=None, metavar="DATASET",
                      help="image dataset generators learn from (default: each cell's own dataset; "
                           "needed when the cells' dataset is a table)")
    data.add_argument("--search-data", default=None, metavar="DATASET",
                      help="image dataset one-shot search algorithms (gradient, rl --rl-mode shared) train their "
                           "supernet on when the cells' dataset is a table; the derived architecture is scored on "
                           "the table")
    training = parser.add_argument_group("training")
    training.add_argument("--fix", action="append", metavar="NAME=VALUE", default=[],
                          help="pin a hyperparameter (lr, weight_decay, optimizer, batch_size, schedule, ...)")
    training.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    training.add_argument("--compile", action="store_true", help="torch.compile models (CUDA)")
    training.add_argument("--deterministic", action="store_true", help="disable cuDNN autotuning")
    execution = parser.add_argument_group("execution and output")
    execution.add_argument("--jobs", type=int, default=1,
                           help="worker processes on this machine, with --launcher local (default 1)")
    execution.add_argument("--launcher", default="local",
                           help="where the workers run: local (this machine, --jobs processes), slurm (a job "
                                "array), or a plugin's; see `harness list` (default local)")
    execution.add_argument("--detach", action="store_true",
                           help="with a remote launcher (slurm): return once the workers are submitted and print "
                                "the `harness report` command to run when they finish")
    execution.add_argument("--threads", type=int, default=None,
                           help="CPU threads per worker process (default: cores / jobs)")
    execution.add_argument("--storage", default=None,
                           help="Optuna storage URL (default: journal file in the run folder); "
                                "postgresql://user:pw@host/db to share a run across machines")
    execution.add_argument("--heartbeat", type=int, default=10,
                           help="seconds between a running trial's heartbeats on RDB storages; a trial silent for "
                                "3 intervals is retried by another worker (default 10)")
    execution.add_argument("--results", default="results", help="results folder (default ./results)")
    execution.add_argument("--run-id", default=None, help="run id (default: derived from the settings)")
    execution.add_argument("--reporters", type=_names, help=f"default: {','.join(DEFAULTS['reporter'])}")
    execution.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def build_parser(registry: Any = None) -> argparse.ArgumentParser:
    """The full parser; with a registry, its plugins' options are included."""
    parser = Parser(prog="harness", description="Benchmark NAS and HPO strategies side by side.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("--plugins", type=_names, default=None,
                        help="load only these plugins (comma-separated; see `harness list`)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    run_parent = Parser(add_help=False)
    _run_options(run_parent)
    # `harness report` takes the plugins' options too (a reporter's format, say), but only those
    # given on its command line override the ones stored with the run
    report_options = Parser(add_help=False)
    if registry is not None:
        registry.add_options(run_parent, record=True)
        registry.add_options(report_options, record=False)
        for action in report_options._actions:
            if action.help and "%(default)" in action.help:  # help shows the default it had
                action.help = action.help.replace("%(default)s", str(action.default))
            action.default = argparse.SUPPRESS
    # --plugins and -v are read before the subcommand is known, so they may stand after it too
    common = Parser(add_help=False)
    common.add_argument("--plugins", type=_names, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("bench", parents=[run_parent, common], help="run (or resume) a grid and report it")
    sub.add_parser("worker", parents=[run_parent, common],
                   help="join a run started elsewhere (same options, shared --storage)")
    sub.add_parser("list", parents=[common], help="list every component with its plugin and version")
    report = sub.add_parser("report", parents=[common, report_options],
                            help="re-export and re-render stored runs (plugin options override the run's)")
    report.add_argument("run", nargs="+", help="run ids (under --results) or run folders; several are merged")
    report.add_argument("--results", default="results")
    report.add_argument("--reporters", type=_names, default=None)
    report.add_argument("--out", default=None,
                        help="output folder (default: the run's folder; for several runs, results/merged-<ids>)")
    report.add_argument("--match", default="trials", choices=["trials", "epochs", "cost"],
                        help="budget unit for merged runs with different budgets (default: trials)")
    report.add_argument("--from-tables", action="store_true",
                        help="report the exported trials.csv and cells.csv as they are, without the storage "
                             "(a run folder copied without it)")
    report.add_argument("--accept-loss", action="store_true",
                        help="re-export even if trials in trials.csv are missing from the storage")
    repair = sub.add_parser("repair", parents=[common],
                            help="repair a run's journal cut short or corrupted (backs up the original)")
    repair.add_argument("run", help="a run id (under --results), a run folder, or a journal file")
    repair.add_argument("--results", default="results")
    return parser


def _factory_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options component factories receive: every parsed option, as JSON values."""
    options = {k: v for k, v in vars(args).items() if k not in ("command", "verbose")}
    return json.loads(json.dumps(options, default=str))


def default_options(registry: Any) -> dict[str, Any]:
    """The options factories receive from an empty ``harness bench`` command line: every built-in
    default and every loaded plugin's ``harness_addoption`` default (what ``harness.testing``
    hands to factories, so ``options[dest]`` works there as at run time)."""
    return _factory_options(build_parser(registry).parse_args(["bench"]))


def _axis(registry: Any, kind: str, given: list[str] | None) -> list[str]:
    if given is not None:
        return given
    loaded = registry.names(kind)
    chosen = [name for name in DEFAULTS[kind] if name in loaded]
    return chosen or loaded


def config_from_args(args: argparse.Namespace, registry: Any) -> Any:
    from harness.config import RunConfig
    from harness.hyperparams import parse_fixed

    axes = {"dataset": args.datasets, "generator": args.generators, "space": args.spaces, "algorithm": args.algorithms,
            "sampler": args.samplers, "pruner": args.pruners}
    used_plugins = {registry.get(kind, name).plugin for kind, names in axes.items()
                    for name in _axis(registry, kind, names)}
    # the run id hashes the options of the plugins the grid uses, not of every plugin installed,
    # and none that a plugin marked execution-only (a report format does not change results)
    counted = registry.result_options(used_plugins)
    return RunConfig(
        datasets=_axis(registry, "dataset", args.datasets), spaces=_axis(registry, "space", args.spaces),
        generators=_axis(registry, "generator", args.generators), generator_data=args.generator_data,
        search_data=args.search_data,
        heartbeat=args.heartbeat,
        algorithms=_axis(registry, "algorithm", args.algorithms), samplers=_axis(registry, "sampler", args.samplers),
        pruners=_axis(registry, "pruner", args.pruners), seeds=args.seeds, trials=args.trials, epochs=args.epochs,
        timeout=args.timeout, val_fraction=args.val_fraction, split_seed=args.split_seed,
        max_per_class=args.max_per_class, fixed=parse_fixed(args.fix), device=args.device, jobs=args.jobs,
        threads=args.threads, launcher=args.launcher, detach=args.detach,
        storage=args.storage, results=args.results, run_id=args.run_id,
        reporters=_axis(registry, "reporter", args.reporters), compile=args.compile,
        deterministic=args.deterministic, data_dir=args.data_dir, download=args.download, progress=args.progress,
        plugins=args.plugins, options=_factory_options(args), counted_options=counted,
    )


def _print_list(registry: Any, out: Any) -> None:
    rows = [(r.kind, r.name, r.plugin, r.version, r.spec.description) for r in registry.all()]
    header = ("KIND", "NAME", "PLUGIN", "VERSION", "DESCRIPTION")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row[:4], widths)) + "  " + str(row[4]), file=out)


def _run_dir(run: str, results: str) -> Path:
    """The folder of ``run``: a folder given as such, else a run id under ``results``."""
    if Path(run).is_dir():
        return Path(run)
    from harness.runfiles import check_run_id

    check_run_id(run)
    return Path(results) / run


def _export(run_dir: Path, accept_loss: bool = False) -> Any:
    """Re-export a run's tables from its storage. A missing storage file, or one that lacks
    exported trials, is refused; an unreachable server falls back to the exported tables."""
    from harness.results import export_run, load_results
    from harness.runfiles import read_run_json
    from harness.storage import close_storage, open_storage, storage_path, storage_url

    metadata = read_run_json(run_dir / "run.json")
    config = metadata["config"]
    from harness.config import RunConfig
    from harness.grid import PlannedCell

    planned = [PlannedCell.from_json(c) for c in metadata["cells"]]
    url = config.get("storage") or storage_url(None, run_dir)
    path = storage_path(url)
    if path is not None and not path.exists():
        raise UsageError(f"the run's storage {path} is missing; refusing to re-export {run_dir} from nothing "
                         f"(restore the file; the exported tables are unchanged)")
    try:
        storage = open_storage(url, create=False)
    except UsageError as exc:  # a server unreachable: the exported tables still tell the story
        if path is not None:
            raise
        logging.getLogger(__name__).warning("%s; reporting the last exported tables", exc)
        return load_results(run_dir)
    try:
        return export_run(run_dir, metadata["run_id"], storage, planned, RunConfig.from_json(config),
                          accept_loss=accept_loss)
    finally:
        close_storage(storage)


def _report(registry: Any, run_dirs: Sequence[Path] | Path, reporters: Iterable[str] | None,
            overrides: dict[str, Any] | None = None, accept_loss: bool = False, out_dir: Path | None = None,
            match: str = "trials", from_tables: bool = False, exported: Any = None) -> ReportOutcome:
    """Re-export the runs' tables from their storage (or, ``from_tables``, read them as exported) and
    run ``reporters`` (default: the first run's) on one run, or on several merged (see
    ``harness.merge``), into ``out_dir`` (default: the run's folder). Their factories get the
    defaults, then the options stored with the (first) run, then ``overrides`` (given to
    ``harness report``). Each reporter runs in isolation (see :func:`_run_reporter`). ``exported``:
    the results ``harness bench`` has just exported (the run is then not exported again)."""
    from harness.merge import merge_runs
    from harness.results import load_results

    run_dirs = [run_dirs] if isinstance(run_dirs, Path) else list(run_dirs)
    for folder in run_dirs if from_tables else ():
        if not (folder / "trials.csv").exists() or not (folder / "cells.csv").exists():
            raise UsageError(f"{folder}: no trials.csv and cells.csv here to report from")
    runs = [exported] if exported is not None else \
        [load_results(d) if from_tables else _export(d, accept_loss) for d in run_dirs]
    out_dir = out_dir or run_dirs[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    results = runs[0] if len(runs) == 1 and out_dir == run_dirs[0] else merge_runs(runs, out_dir, match)
    config = runs[0].metadata.get("config", {})
    options = {**default_options(registry), **config.get("options", {}),
               **json.loads(json.dumps(overrides or {}, default=str))}
    outcome = ReportOutcome()
    for name in reporters or config.get("reporters") or DEFAULTS["reporter"]:
        _run_reporter(registry, registry.get("reporter", name), options, results, out_dir, outcome)
    return outcome


def _check_reporters(config: Any, registry: Any) -> None:
    """Show each selected reporter the planned grid before anything runs (``Reporter.check_plan``),
    so an option of theirs that can never fit it (``--baseline`` naming no planned strategy) is a
    one-line error, exit 2, with nothing written, not a failure after the whole grid has run. Any
    other exception is left for the reporter's own run, where it fails that reporter alone."""
    import pandas as pd

    from harness.grid import AXES, expand_grid

    planned = pd.DataFrame([cell.as_row() for cell in expand_grid(config, registry)], columns=list(AXES))
    for name in config.reporters:
        try:
            reporter = registry.reporter(name, config.options)
            check = getattr(reporter, "check_plan", None)  # duck-typed reporters may lack it
            if check is not None:
                check(planned)
        except UsageError:
            raise
        except Exception:  # noqa: BLE001 - a reporter's bug is reported when it runs, alone
            continue


@dataclass
class ReportOutcome:
    """What the reporters printed, and one line per reporter that failed: a reporter's bug costs
    its own output only, so the command can still show the others and exit
    :data:`EXIT_REPORTER_FAILED` instead of dying with a traceback."""

    texts: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(t for t in self.texts if t)


def _run_reporter(registry: Any, registered: Any, options: dict[str, Any], results: Any, out_dir: Path,
                  outcome: ReportOutcome) -> None:
    """Build and run one reporter in isolation: an exception becomes one line naming the reporter
    and its plugin (traceback in ``out_dir``'s ``harness.log``); a :class:`UsageError` (a bad
    option value) still stops the command with its own line, exit 2."""
    try:
        text = registry.reporter(registered.name, options).report(results, out_dir)
        if text is not None and not isinstance(text, str):
            raise TypeError(f"report() returned {type(text).__name__}, expected the terminal text (a str)")
        outcome.texts.append(text or "")
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a reporter plugin's bug must not take the others down
        from harness.logs import log_exception_to

        what = f"reporter {registered.name!r} (plugin {registered.plugin!r}) failed"
        log = log_exception_to(out_dir, what, logger=__name__)
        where = f"traceback in {log}" if log else "the log could not be written"
        outcome.failures.append(f"harness: {what}: {_one_line(exc)} ({where})")


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, whitespace collapsed (a message may span lines)."""
    lines = str(exc).strip().splitlines()
    message = " ".join(lines[0].split()) if lines else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _print_report(outcome: ReportOutcome) -> bool:
    """Print the reports' text, then each failed reporter's line on stderr; whether all ran."""
    print(outcome.text)
    for line in outcome.failures:
        print(line, file=sys.stderr)
    return not outcome.failures


def _repair(run: str, results: str) -> str:
    """Repair the run's journal (or the journal file given) and say what was kept and dropped."""
    from harness.journal import check_journal, looks_like_journal, repair_journal
    from harness.runfiles import read_run_json
    from harness.storage import storage_path, storage_url

    if Path(run).is_file():
        journal, run_dir = Path(run), None
    else:
        run_dir = _run_dir(run, results)
        config = read_run_json(run_dir / "run.json")["config"]
        url = config.get("storage") or storage_url(None, run_dir)
        if not url.startswith("journal:"):
            raise UsageError(f"run {run!r} uses storage {url}, not a journal file; only journal files need repair")
        journal = storage_path(url)  # type: ignore[assignment]
    if not journal.exists():
        raise UsageError(f"journal {journal} does not exist")
    if not check_journal(journal).problems:
        return f"journal {journal}: every record is complete; nothing to repair"
    if not looks_like_journal(journal):
        raise UsageError(f"{journal} is not an Optuna journal (none of its first lines is a journal record); "
                         f"nothing was changed")
    report = repair_journal(journal)
    lines = [report.summary()]
    touched = _describe_trials(journal, report.trial_ids)
    if touched:
        lines.append(f"dropped records touch {len(touched)} trial(s): {', '.join(touched)} (a trial left running "
                     f"is retried by the next bench)")
    if run_dir is not None and (run_dir / "run.json").exists():  # exported even if it never was before
        from harness.config import RunConfig
        from harness.grid import PlannedCell
        from harness.results import export_run
        from harness.runfiles import read_run_json as _read
        from harness.storage import close_storage, open_storage

        metadata = _read(run_dir / "run.json")
        storage = open_storage(f"journal:{journal.resolve()}", create=False)
        try:
            export_run(run_dir, metadata["run_id"], storage, [PlannedCell.from_json(c) for c in metadata["cells"]],
                       RunConfig.from_json(metadata["config"]), accept_loss=True)
        finally:
            close_storage(storage)
        lines.append(f"exported {run_dir / 'trials.csv'} and cells.csv from the repaired journal")
    return "\n".join(lines)


def _describe_trials(journal: Path, trial_ids: list[int]) -> list[str]:
    """``study #number (state)`` for the journal's trial ids that still exist after a repair."""
    if not trial_ids:
        return []
    from harness.storage import open_storage

    storage = open_storage(f"journal:{journal.resolve()}", create=False)
    where = {t._trial_id: (study.study_name, t) for study in storage.get_all_studies()
             for t in storage.get_all_trials(study._study_id, deepcopy=False)}
    out = []
    for trial_id in trial_ids:
        if trial_id in where:
            name, trial = where[trial_id]
            out.append(f"{name} #{trial.number} ({trial.state.name.lower()})")
        else:
            out.append(f"trial id {trial_id} (its creation was dropped)")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 failure, 2 user error or a full disk, 3 run incomplete: a worker
    died and cells are short of their budget, 4 a reporter failed: the results are complete, its
    report is missing, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except UsageError as exc:
        message = " ".join(str(exc).split("\n")[0].split()) if str(exc).strip() else type(exc).__name__
        print(f"harness: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; completed trials are stored, rerun the same command to resume",
              file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        print(f"harness: error: {disk_full_message(exc)}", file=sys.stderr)
        return 2
    finally:
        from harness.logs import unroute_library_logs

        unroute_library_logs()


#: ``errno`` values of a write the disk (or the user's quota) has no room for.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full_message(exc: OSError) -> str:
    """One line for a full disk: where, and that nothing completed is lost (every journal append is
    whole or undone, every table is replaced atomically)."""
    where = f" writing {exc.filename}" if exc.filename else ""
    return (f"no space left on the device{where} ({exc.strerror}); completed trials are stored: free some "
            f"space, then rerun the same command to resume")


def _main(argv: list[str]) -> int:
    pre = Parser(add_help=False)
    pre.add_argument("--plugins", type=_names, default=None)
    pre.add_argument("-v", "--verbose", action="store_true")
    early, _ = pre.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO if early.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from harness.registry import load_registry

    registry = load_registry(early.plugins)
    parser = build_parser(registry)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    if args.command in (None, "list"):
        if args.command is None:
            parser.print_help()
            return 0
        _print_list(registry, sys.stdout)
        return 0
    if args.command == "report":
        run_dirs = [_run_dir(run, args.results) for run in args.run]
        out = Path(args.out) if args.out else None
        if out is None and len(run_dirs) > 1:
            out = Path(args.results) / ("merged-" + "+".join(d.name for d in run_dirs))[:120]
        from harness.runfiles import read_run_json

        first = run_dirs[0] / "run.json"  # a corrupt one is a one-line error naming it
        stored = read_run_json(first)["config"].get("reporters") if first.exists() else None
        reporters = args.reporters or stored or _axis(registry, "reporter", None)
        overrides = {k: v for k, v in vars(args).items() if k in registry.plugin_options()}
        outcome = _report(registry, run_dirs, reporters, overrides, args.accept_loss, out, args.match,
                          args.from_tables)
        return 0 if _print_report(outcome) else EXIT_REPORTER_FAILED
    if args.command == "repair":
        print(_repair(args.run, args.results))
        return 0
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = config_from_args(args, registry)
    from harness.logs import route_library_logs
    from harness.runner import RunIncomplete, run_bench, run_worker

    route_library_logs(config.run_dir)
    if args.command == "worker":
        run_worker(config, registry)
        print(f"run {config.run_id}: this worker found no more work; harness report {config.run_id} "
              f"(or the run's harness bench) exports the results")
        return 0
    _check_reporters(config, registry)
    incomplete = None
    try:
        results = run_bench(config, registry)
    except RunIncomplete as exc:
        incomplete, results = exc, exc.results
    if results is None:  # --detach: the workers run on; the report waits for them
        print(f"run {config.run_id}: workers submitted; once they have finished, write the report with:\n"
              f"harness report {config.run_id} --results {config.results}")
        return 0
    print(f"run {config.run_id}: results in {config.run_dir}")
    reported = _print_report(_report(registry, config.run_dir, config.reporters, exported=results))
    if incomplete is not None:
        print(f"harness: {incomplete}", file=sys.stderr)
        return 3  # rerunning matters more than a missing report (the rerun reports again)
    return 0 if reported else EXIT_REPORTER_FAILED
