"""``summary``: one row per grid cell across seeds (mean ± std), printed and written as CSV + Markdown.

Per seed the *best* trial is the complete trial with the highest validation accuracy, the earliest
among equals (:func:`harness.schema.best_trials`, as in every report); the test accuracy is the
best trial's, never a maximum over test accuracies: selecting on test would be cheating. Epochs
spent and cost count every trial, pruned and failed ones included (per trial
:func:`harness.schema.trial_costs`), plus one-shot search time, because that is what the strategy
cost. ``n/a`` and failed cells stay in the table with their reason.

Costs are kept apart: child training (every trial's wall time, or a table's simulated seconds),
one-shot search (supernet, controller) and space generation. Generation is shared by every cell of
its (generator, base space, data, seed): the table shows what each cell would pay alone, and the
footer the one-off total of the run. Rows of one comparison sit together, generators innermost, so
``manual`` vs a generated space is read in one glance.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness import hookimpl
from harness.components import Options, Reporter, ReporterSpec, RunResults
from harness.results import NOT_APPLICABLE
from harness.schema import best_trials, trial_costs

__all__ = ["SummaryReporter", "summarise"]

GROUP = ["dataset", "space", "algorithm", "sampler", "pruner", "generator"]
METRICS = ["best_val_accuracy", "test_accuracy", "madds", "params", "epochs_spent", "train_seconds",
           "search_seconds", "generation_seconds", "wall_seconds"]


def _with_generator(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs made before the generator axis existed searched the base space: ``manual``."""
    if "generator" not in frame.columns:
        frame = frame.assign(generator="manual")
    return frame


def _per_seed(results: RunResults) -> pd.DataFrame:
    trials, cells = _with_generator(results.trials), _with_generator(results.cells)
    by_cell = trials.groupby("cell", sort=False) if len(trials) else None
    states = (by_cell["state"].value_counts().unstack(fill_value=0) if by_cell is not None
              else pd.DataFrame())
    epochs = (pd.to_numeric(trials["epochs"], errors="coerce").fillna(0).groupby(trials["cell"]).sum()
              if "epochs" in trials else pd.Series(dtype=float))
    costs = trial_costs(trials).groupby(trials["cell"]).sum() if len(trials) else pd.Series(dtype=float)
    best = best_trials(trials) if len(trials) else pd.DataFrame()
    if not len(cells):
        return pd.DataFrame()
    # a column per quantity over all cells at once, in cells.csv's order (a row per cell)
    keys = cells["cell"]
    out = pd.DataFrame({axis: cells[axis].to_numpy() for axis in [*GROUP, "seed"]})
    out["state"] = cells["state"].to_numpy()
    out["reason"] = [r if isinstance(r, str) else "" for r in cells["reason"]]
    out["note"] = [n if isinstance(n, str) else "" for n in cells["note"]] if "note" in cells else ""
    for name in ("complete", "pruned", "failed"):
        out[name] = (keys.map(states[name]).fillna(0).astype(int).to_numpy() if name in states.columns
                     else 0)
    found = keys.isin(best.index).to_numpy()
    for name, column in (("best_val_accuracy", "val_accuracy"), ("test_accuracy", "test_accuracy"),
                         ("madds", "madds"), ("params", "params")):
        out[name] = [_num(v) if hit else np.nan
                     for v, hit in zip(keys.map(best[column]) if found.any() else keys, found)]
    ran = (cells["state"] != NOT_APPLICABLE).to_numpy()  # nothing ran: no cost to report, not a cost of zero
    search = np.array([_num(v) for v in cells["search_seconds"]]) if "search_seconds" in cells else np.nan
    generation = (np.array([_num(v) for v in cells["generation_seconds"]]) if "generation_seconds" in cells
                  else np.nan)
    train = keys.map(costs).fillna(0.0).astype(float).to_numpy()
    search = np.where(np.isnan(search), 0.0, search)
    generation = np.where(np.isnan(generation), 0.0, generation)
    out["epochs_spent"] = np.where(ran, keys.map(epochs).fillna(0.0).astype(float).to_numpy(), np.nan)
    out["train_seconds"] = np.where(ran, train, np.nan)
    out["search_seconds"] = np.where(ran, search, np.nan)
    out["generation_seconds"] = np.where(ran, generation, np.nan)
    out["wall_seconds"] = np.where(ran, train + search + generation, np.nan)
    return out


def _num(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def headline(reason: str) -> str:
    """A cell's failure reason on one line, whole: its first line, followed, when a traceback
    follows, by the exception and its complete message (the part after the last stack frame)."""
    lines = [line for line in reason.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if "Traceback (most recent call last):" not in lines:
        return " ".join(line.strip() for line in lines)
    start = lines.index("Traceback (most recent call last):")
    frames = [i for i in range(start + 1, len(lines)) if lines[i].startswith((" ", "\t"))]
    message = " ".join(line.strip() for line in lines[(frames[-1] if frames else start) + 1:])
    head = " ".join(line.strip() for line in lines[:start]).rstrip(":")
    return f"{head}: {message}" if head else message


def summarise(results: RunResults) -> pd.DataFrame:
    """The summary table: per (dataset, space, algorithm, sampler, pruner, generator), mean and std
    over seeds; rows of one comparison together (in the grid's order), generators innermost."""
    per_seed = _per_seed(results)
    if per_seed.empty:
        return pd.DataFrame(columns=[*GROUP, "seeds", "state"])
    out = []
    order = {name: i for i, name in enumerate(dict.fromkeys(per_seed["generator"]))}
    per_seed = per_seed.sort_values("generator", key=lambda g: g.map(order), kind="stable")
    first_seen = {key: i for i, key in enumerate(dict.fromkeys(map(tuple, per_seed[GROUP[:-1]].values)))}
    per_seed = per_seed.assign(_group=[first_seen[tuple(v)] for v in per_seed[GROUP[:-1]].values])
    per_seed = per_seed.sort_values("_group", kind="stable").drop(columns="_group")
    for key, group in per_seed.groupby(GROUP, sort=False, dropna=False):
        row = dict(zip(GROUP, key))
        row["seeds"] = len(group)
        states = sorted(set(group["state"]))
        row["state"] = ",".join(states)
        row["reason"] = "; ".join(sorted({headline(r) for r in group["reason"] if r}))
        row["note"] = "; ".join(sorted({n for n in group["note"] if n}))
        for name in ("complete", "pruned", "failed"):
            row[name] = int(group[name].sum())
        for metric in METRICS:
            values = group[metric].astype(float)
            row[f"{metric}_mean"] = values.mean()
            seen = values.notna()
            row[f"{metric}_std"] = values.std(ddof=1) if seen.sum() > 1 else (0.0 if seen.any() else np.nan)
        out.append(row)
    return pd.DataFrame(out)


def _fmt(mean: float, std: float, scale: float = 1.0, digits: int = 1) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean * scale:.{digits}f} ± {0.0 if pd.isna(std) else std * scale:.{digits}f}"


def to_markdown(summary: pd.DataFrame) -> str:
    header = ["dataset", "space", "algorithm", "sampler", "pruner", "generator", "seeds", "val acc %", "test acc %",
              "MAdds (M)", "params (k)", "trials c/p/f", "epochs", "train s", "search s", "gen s (alone)", "total s",
              "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in summary.iterrows():
        if r["state"] == NOT_APPLICABLE:
            note = f"n/a: {r['reason']}"
        elif "failed" in r["state"]:
            note = f"failed: {r['reason']}"
        elif "exhausted" in r["state"].split(","):  # finished short of its budget: say why
            others = [state for state in r["state"].split(",") if state not in ("done", "exhausted")]
            note = "; ".join([*others, r["reason"] or "exhausted"])
            if r.get("note"):
                note = f"{note}; {r['note']}"
        else:
            note = "" if r["state"] == "done" else r["state"]
            if r.get("note"):
                note = f"{note}; {r['note']}" if note else r["note"]
        cells = [r["dataset"], r["space"], r["algorithm"], r["sampler"], r["pruner"], r["generator"], str(r["seeds"]),
                 _fmt(r["best_val_accuracy_mean"], r["best_val_accuracy_std"], 100),
                 _fmt(r["test_accuracy_mean"], r["test_accuracy_std"], 100),
                 _fmt(r["madds_mean"], r["madds_std"], 1e-6, 3), _fmt(r["params_mean"], r["params_std"], 1e-3, 1),
                 f"{r['complete']}/{r['pruned']}/{r['failed']}",
                 _fmt(r["epochs_spent_mean"], r["epochs_spent_std"], 1, 0),
                 _fmt(r["train_seconds_mean"], r["train_seconds_std"], 1, 1),
                 _fmt(r["search_seconds_mean"], r["search_seconds_std"], 1, 1),
                 _fmt(r["generation_seconds_mean"], r["generation_seconds_std"], 1, 1),
                 _fmt(r["wall_seconds_mean"], r["wall_seconds_std"], 1, 1), note.replace("|", "/")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def generation_footer(cells: pd.DataFrame) -> str:
    """The run's one-off generation cost: each generation counted once, however many cells share it."""
    if "generation_key" not in cells.columns or not cells["generation_key"].notna().any():
        return ""
    once = cells.dropna(subset=["generation_key"]).drop_duplicates("generation_key")
    sharing = int(cells["generation_key"].notna().sum())
    return (f"\nSpace generation, one-off: {pd.to_numeric(once['generation_seconds']).sum():.1f} s for "
            f"{len(once)} generation(s) shared by {sharing} cell(s) (the table's `gen s (alone)` is what each "
            f"cell would pay alone).\n")


class SummaryReporter(Reporter):
    def report(self, results: RunResults, out_dir: Path) -> str:
        summary = summarise(results)
        summary.to_csv(out_dir / "summary.csv", index=False)
        text = to_markdown(summary) + generation_footer(results.cells)
        (out_dir / "summary.md").write_text(f"# Run {results.run_dir.name}: summary\n\n"
                                            "Mean ± std over seeds; best = highest validation accuracy.\n\n" + text)
        return text


def _factory(options: Options) -> SummaryReporter:
    return SummaryReporter()


@hookimpl
def harness_reporters() -> list[ReporterSpec]:
    return [ReporterSpec(name="summary", description="per-cell table over seeds (CSV + Markdown)", factory=_factory)]
