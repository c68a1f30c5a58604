"""The paper's cross-validation tables (Tables 1-3): per-class values of the best model of the official split and of
every fold, with their mean and standard deviation over the folds.

    <runs>/official/history.json          an affect stage run with --fold official (optional)
    <runs>/fold_<i>/history.json          the runs with --fold i, i = 1..K (all of them)
    <runs>/folds.md, folds.json, folds.png   `write_fold_table`

A run's numbers are those of its best model: the history's evaluation at its `best_step`, which is what `best/`
holds. Raw metrics by default, those after the model's smoothing policy (`smoothed/...`) on request.

histories (`read_fold_histories`) -> table data (`fold_tables`) -> Markdown, JSON, PNG.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .errors import InputError
from .io import atomic_path, write_json, write_text
from .tasks import TASKS
from .train import HISTORY_FILE, OFFICIAL_SPLIT

FOLD_PREFIX = "fold_"
TABLE_FILES = ("folds.md", "folds.json", "folds.png")


@dataclass
class FoldRun:
    """One split's run: its name (`official`, `fold_<i>`), its recorded split and the evaluation of its best model."""

    name: str
    split: dict
    tasks: list[str]
    best_evaluation: dict

    @property
    def title(self) -> str:
        return self.name.replace("_", " ")


@dataclass
class TaskTable:
    """One task's table: `columns` are metric keys (`<metric_key>/<label>` per class, then `<metric_key>`, the task
    metric), `values[split]` one value per column; mean and std over the folds; best and worst split per column
    (None where all splits tie)."""

    task: str
    columns: list[str]
    headers: list[str]
    values: dict[str, list[float]]
    mean: list[float]
    std: list[float]
    best: list[str | None]
    worst: list[str | None]


def fold_run_dirs(directory: Path) -> list[Path]:
    """The run folders under `directory`: official/ (when present), then fold_<i>/ by fold number."""
    folds = [path for path in directory.glob(f"{FOLD_PREFIX}*") if path.name[len(FOLD_PREFIX) :].isdigit()]
    official = [directory / OFFICIAL_SPLIT] if (directory / OFFICIAL_SPLIT).is_dir() else []
    return official + sorted(folds, key=lambda path: int(path.name[len(FOLD_PREFIX) :]))


def read_fold_histories(directory: str | Path) -> list[FoldRun]:
    """The runs of a cross-validation folder, checked: every fold 1..K present, one K and fold seed, one task list."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: no such folder")
    runs = [read_fold_run(path) for path in fold_run_dirs(directory)]
    if not runs:
        raise InputError(f"{directory}: no runs (official/ or {FOLD_PREFIX}<i>/ folders with a {HISTORY_FILE})")
    task_lists = {",".join(run.tasks) for run in runs}
    if len(task_lists) > 1:
        raise InputError(f"{directory}: the runs learn different tasks ({'; '.join(sorted(task_lists))})")
    folds = fold_runs(runs)
    if not folds:
        raise InputError(f"{directory}: no fold runs ({FOLD_PREFIX}1/ .. {FOLD_PREFIX}K/), only {OFFICIAL_SPLIT}/")
    settings = {(run.split["num_folds"], run.split["fold_seed"]) for run in folds}
    if len(settings) > 1:
        found = ", ".join(f"{run.name}: {run.split['num_folds']} folds, seed {run.split['fold_seed']}" for run in folds)
        raise InputError(f"{directory}: the fold runs have different --num_folds/--fold_seed ({found})")
    num_folds = folds[0].split["num_folds"]
    missing = [
        f"{FOLD_PREFIX}{i}" for i in range(1, num_folds + 1) if f"{FOLD_PREFIX}{i}" not in {r.name for r in folds}
    ]
    extra = [run.name for run in folds if run.split["fold"] > num_folds]
    if missing or extra:
        problem = f"missing {', '.join(missing)}" if missing else f"unexpected {', '.join(extra)}"
        raise InputError(f"{directory}: the runs have {num_folds} folds, {problem}")
    return runs


def fold_runs(runs: list[FoldRun]) -> list[FoldRun]:
    """The runs of the folds, without the official split's."""
    return [run for run in runs if run.name != OFFICIAL_SPLIT]


def read_fold_run(path: Path) -> FoldRun:
    history_path = path / HISTORY_FILE
    if not history_path.is_file():
        raise InputError(f"{path}: no {HISTORY_FILE} (not trained yet?)")
    try:
        history = json.loads(history_path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{history_path}: not valid JSON ({error})") from None
    split = history.get("split")
    if not isinstance(split, dict) or "tasks" not in history:
        raise InputError(f"{history_path}: records no split (not a finetune/tmf run of this version)")
    expected = OFFICIAL_SPLIT if path.name == OFFICIAL_SPLIT else int(path.name[len(FOLD_PREFIX) :])
    if split["fold"] != expected:
        raise InputError(f"{history_path}: a run of --fold {split['fold']}, in the folder of {path.name}")
    best = [entry for entry in history.get("eval", []) if entry["step"] == history.get("best_step")]
    if not best:
        raise InputError(f"{history_path}: no evaluation of a best model (did the run evaluate?)")
    return FoldRun(path.name, split, history["tasks"], best[-1])


def fold_tables(runs: list[FoldRun], smoothed: bool = False) -> list[TaskTable]:
    """One `TaskTable` per task of the runs, from the best evaluation of each; `smoothed` reads `smoothed/...`."""
    prefix = "smoothed/" if smoothed else ""
    folds = fold_runs(runs)
    tables = []
    for name in runs[0].tasks:
        task = TASKS[name]
        columns = [f"{task.metric_key}/{label}" for label in task.labels] + [task.metric_key]
        values = {}
        for run in runs:
            absent = [column for column in columns if prefix + column not in run.best_evaluation]
            if absent:
                raise InputError(
                    f"{run.name}: its best evaluation has no {prefix}{absent[0]} (no {name} label in its validation "
                    "videos?)"
                )
            values[run.name] = [float(run.best_evaluation[prefix + column]) for column in columns]
        fold_values = np.array([values[run.name] for run in folds])
        all_values = np.array(list(values.values()))
        ties = all_values.max(0) == all_values.min(0)
        names = list(values)
        tables.append(
            TaskTable(
                task=name,
                columns=columns,
                headers=[*task.labels, task.metric_key],
                values=values,
                mean=fold_values.mean(0).tolist(),
                # The sample standard deviation over the folds (K - 1 degrees of freedom).
                std=fold_values.std(0, ddof=1).tolist(),
                # Both F1 and CCC are better higher.
                best=[None if tie else names[i] for tie, i in zip(ties, all_values.argmax(0))],
                worst=[None if tie else names[i] for tie, i in zip(ties, all_values.argmin(0))],
            )
        )
    return tables


def fold_table_markdown(runs: list[FoldRun], tables: list[TaskTable], smoothed: bool = False) -> str:
    """The tables in the paper's Tables 1-3 form, one per task."""
    folds = fold_runs(runs)
    split = folds[0].split
    values = "after the model's smoothing policy (`smoothed/`)" if smoothed else "raw (no smoothing)"
    lines = [
        "# Cross-validation",
        "",
        f"The best model of each split (its evaluation at the best step, what `best/` holds), {values}. Folds: "
        f"{split['num_folds']} video-level folds of the labelled train + validation videos (fold seed "
        f"{split['fold_seed']}).",
    ]
    for table in tables:
        lines += ["", f"## {table.task.upper()}: {TASKS[table.task].metric_key} per class", ""]
        lines.append("| split | " + " | ".join(table.headers) + " |")
        lines.append("|:--|" + "--:|" * len(table.headers))
        for run in runs:
            cells = []
            for column, value in enumerate(table.values[run.name]):
                cell = f"{value:.3f}"
                if table.best[column] == run.name:
                    cell = f"**{cell}**"
                elif table.worst[column] == run.name:
                    cell = f"_{cell}_"
                cells.append(cell)
            lines.append(f"| {run.title} | " + " | ".join(cells) + " |")
        spread = [f"{mean:.3f} ± {std:.3f}" for mean, std in zip(table.mean, table.std)]
        lines.append(f"| mean ± std ({len(folds)} folds) | " + " | ".join(spread) + " |")
    lines += [
        "",
        "**Bold**: the best split of a column, _italic_: the worst (over the official split and the folds; none where "
        "all tie). mean ± std: over the folds (sample standard deviation), without the official split.",
        "",
    ]
    return "\n".join(lines)


def fold_table_json(runs: list[FoldRun], tables: list[TaskTable], smoothed: bool = False) -> dict:
    """The same numbers as the Markdown, keyed by split and metric key."""
    folds = fold_runs(runs)
    return {
        "smoothed": smoothed,
        "num_folds": folds[0].split["num_folds"],
        "fold_seed": folds[0].split["fold_seed"],
        "tasks": runs[0].tasks,
        "splits": {
            run.name: {"step": run.best_evaluation["step"], "validation_videos": run.split["validation_videos"]}
            for run in runs
        },
        "tables": {
            table.task: {
                "columns": table.columns,
                "values": {name: dict(zip(table.columns, row)) for name, row in table.values.items()},
                "mean": dict(zip(table.columns, table.mean)),
                "std": dict(zip(table.columns, table.std)),
                "best": dict(zip(table.columns, table.best)),
                "worst": dict(zip(table.columns, table.worst)),
            }
            for table in tables
        },
    }


def plot_fold_tables(runs: list[FoldRun], tables: list[TaskTable], path: Path, smoothed: bool = False) -> None:
    """Grouped bars, one panel per task: for each class (and the task metric) one bar per split and the folds' mean
    with its std."""
    figure = Figure(figsize=(max(8.0, 0.9 * max(len(table.columns) for table in tables) + 2), 3.6 * len(tables)))
    groups = [run.name for run in runs] + ["mean"]
    width = 0.8 / len(groups)
    for row, table in enumerate(tables):
        axes = figure.add_subplot(len(tables), 1, row + 1)
        positions = np.arange(len(table.columns))
        for number, name in enumerate(groups):
            heights = table.mean if name == "mean" else table.values[name]
            axes.bar(
                positions + (number - (len(groups) - 1) / 2) * width,
                heights,
                width,
                yerr=table.std if name == "mean" else None,
                color="black" if name == "mean" else None,
                alpha=0.6 if name == "mean" else 1.0,
                label="mean ± std of the folds" if name == "mean" else name.replace("_", " "),
            )
        axes.axhline(0, color="grey", linewidth=0.5)
        axes.set_xticks(positions, table.headers, fontsize=8)
        axes.set_title(f"{table.task.upper()}: {TASKS[table.task].metric_key} per class" + (" (smoothed)" * smoothed))
        axes.grid(axis="y", alpha=0.3)
        axes.legend(fontsize=7, ncol=len(groups), loc="upper left", bbox_to_anchor=(0, -0.12))
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)


def write_fold_table(directory: str | Path, smoothed: bool = False) -> tuple[list[Path], str]:
    """Read the runs under `directory` and write folds.md, folds.json and folds.png there; returns their paths and
    the Markdown."""
    directory = Path(directory)
    runs = read_fold_histories(directory)
    tables = fold_tables(runs, smoothed)
    markdown = fold_table_markdown(runs, tables, smoothed)
    paths = [directory / name for name in TABLE_FILES]
    write_text(paths[0], markdown)
    write_json(paths[1], fold_table_json(runs, tables, smoothed))
    plot_fold_tables(runs, tables, paths[2], smoothed)
    return paths, markdown
