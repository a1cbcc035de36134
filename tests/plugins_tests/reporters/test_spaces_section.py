"""The compare report's search-space verdicts (generator against generator, all else equal) and its
ranking-quality table."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from harness_plugins.reporters._scores import per_cell
from harness_plugins.reporters._spaces import ranking_section, space_section

from harness.results import load_results
from harness.testing.synthetic import synthetic_run


def _run(tmp_path: Path) -> Path:
    strategies = [
        {"generator": g, "space": "nb201", "algorithm": a, "sampler": "random", "pruner": "none", "skill": skill}
        for g, a, skill in (("manual", "random", 0.0), ("autospace", "random", 0.05),
                            ("autospace-random", "random", 0.0), ("manual", "rea", 0.01), ("autospace", "rea", 0.01),
                            ("autospace-random", "rea", 0.01))]
    return synthetic_run(tmp_path / "run", strategies, seeds=range(10), generator=True, tabular=True, noise=0.002)


def test_each_generator_is_compared_with_each_other_for_the_same_algorithm(tmp_path: Path) -> None:
    cells = per_cell(load_results(_run(tmp_path)))
    section = space_section(cells)
    assert section is not None
    lines = section.bullets
    # three generators, two algorithms: three pairs each, and nothing across algorithms
    assert len(lines) == 6 and sum(line.startswith("nb201/random/random/none: ") for line in lines) == 3
    random_lines = [line for line in lines if "/random/random/none" in line]
    assert any("autospace beats autospace-random by" in line for line in random_lines)
    assert any("autospace beats manual by" in line for line in random_lines)
    # with equal skill, rea's spaces are not separated
    assert not any("beats" in line for line in lines if line.startswith("nb201/rea/"))
    table = section.tables[0].display.set_index("algorithm and other axes")
    assert set(table.columns) == {"manual", "autospace", "autospace-random"}


def test_one_generator_gives_no_space_section(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "one", [{"space": "s", "algorithm": "random", "sampler": "random",
                                            "pruner": "none", "skill": 0.0}], generator=True)
    assert space_section(per_cell(load_results(run))) is None


def test_ranking_quality_counts_each_generation_once_and_reports_supernets_per_algorithm(tmp_path: Path) -> None:
    run = _run(tmp_path)
    cells = pd.read_csv(run / "cells.csv")
    autospace = cells["generator"] == "autospace"
    # the generation of a seed serves both algorithms: its tau is recorded on both cells
    cells.loc[autospace, "generation_kendall_tau"] = cells.loc[autospace, "seed"].map(lambda s: 0.1 * (s % 3))
    cells["kendall_tau"] = float("nan")
    cells.to_csv(run / "cells.csv", index=False)
    section = ranking_section(per_cell(load_results(run)))
    assert section is not None
    row = section.tables[0].display.set_index("method").loc["generator autospace"]
    taus = pd.Series([0.1 * (s % 3) for s in range(10)])  # ten generations, not twenty cells
    assert row["Kendall τ"].startswith(f"{taus.mean():+.2f} ± ") and row["Kendall τ"].endswith("(n=10)")


def test_a_dataset_where_the_baseline_has_no_score_still_gets_its_verdicts(tmp_path: Path) -> None:
    """Two tables each covering one space (the other's cells n/a): the run's baseline is absent
    from one dataset's scope, which is compared without it instead of failing."""
    from harness_plugins.reporters.compare import build_sections

    strategies = [{"space": s, "algorithm": a, "sampler": "random", "pruner": "none", "skill": skill}
                  for s in ("nb201", "nats-sss") for a, skill in (("random", 0.0), ("rea", 0.02))]
    run = synthetic_run(tmp_path / "run", strategies, datasets=("t1", "t2"), seeds=range(6), tabular=True)
    cells, trials = pd.read_csv(run / "cells.csv"), pd.read_csv(run / "trials.csv")
    cells["reason"] = cells["reason"].astype(object)
    na = ((cells["dataset"] == "t1") & (cells["space"] == "nats-sss")) | \
         ((cells["dataset"] == "t2") & (cells["space"] == "nb201"))
    cells.loc[na, ["state", "reason"]] = ["not_applicable", "the table covers the other space"]
    cells.to_csv(run / "cells.csv", index=False)
    trials[~trials["cell"].isin(cells.loc[na, "cell"])].to_csv(run / "trials.csv", index=False)
    (tmp_path / "out").mkdir()
    bullets = build_sections(load_results(run), tmp_path / "out")[0].bullets
    assert any(line.startswith("t1: ") and "rea" in line for line in bullets)
    assert any(line.startswith("t2: ") and "rea" in line for line in bullets)
