"""The post-processing chosen on validation (paper Sec. 4.4, Table 9): a search over smoothing policies per task.

The paper reports each filter per task on the validation set (Table 9) and submits a policy that "combines some of
the mentioned smooth policies". `search_smoothing` scores, per task and by the task's challenge metric, on the raw
validation predictions of a trained model:

- `none`;
- the gaussian filter over `SIGMA_GRID`, the median and the average filters over `WINDOW_GRID`, each grid with the
  paper's value for the task added (tasks.py `smoothing_sigma` / `smoothing_window`): 10 + 9 + 9 filters with the
  package's values;
- chains of two filters (`modeling_abaw.smoothing`): the ordered pairs of different filter kinds among the best
  `CHAIN_SEEDS_PER_FILTER` (2) filters of each kind, 6 x 4 = 24 chains.

That is 53 policies per task, each a pass of scipy's filters over every frame: on the ~0.4-1M frames of Aff-Wild2's
validation set, a few minutes per task on one CPU core. Frames without a face are filled from the nearest frame once,
before any filter, as the post-processing does. The winner is the best score; a tie goes to the simpler policy
(`none`, then one filter, then a chain; among equals, the first in the search order, i.e. the smaller parameter).

`write_search_report` writes the result as Markdown (Table 9's form plus every candidate), JSON and a PNG.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .errors import InputError
from .io import atomic_path, write_json, write_text
from .metrics import compute_abaw_metrics
from .smoothing import filter_steps, postprocess_by_video, validate_smoothing_policy
from .tasks import SMOOTHING_FILTERS, TASKS, default_smoothing_policy, validate_tasks

SIGMA_GRID = (1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 18.0, 25.0, 35.0, 50.0)
WINDOW_GRID = (3, 5, 10, 15, 25, 35, 50, 75, 100)
CHAIN_SEEDS_PER_FILTER = 2
# The filters with a parameter, in the order of tasks.SMOOTHING_FILTERS (Table 9's rows).
PARAMETRIC_FILTERS = tuple(kind for kind, parameter in SMOOTHING_FILTERS.items() if parameter is not None)
REPORT_NAME = "smoothing_search"
SMOOTHING_SEARCH_FILES = tuple(f"{REPORT_NAME}.{extension}" for extension in ("md", "json", "png"))


@dataclass(frozen=True)
class Candidate:
    """One scored policy entry of a task: a filter spec or a chain of them (validated), and its validation score."""

    entry: dict | list
    score: float

    @property
    def steps(self) -> list[dict]:
        return filter_steps(self.entry)

    @property
    def complexity(self) -> int:
        """0 for no smoothing, else the number of filters: ties go to the lower."""
        return sum(spec["filter"] != "none" for spec in self.steps)

    @property
    def kind(self) -> str:
        """The filter kind, or "a → b" for a chain."""
        return " → ".join(spec["filter"] for spec in self.steps)

    @property
    def parameter(self) -> str:
        """The parameter of each step ("σ=5", "25" frames), "→"-joined; "—" for none."""
        return " → ".join(_parameter_text(spec) for spec in self.steps)

    @property
    def description(self) -> str:
        return " → ".join(f"{spec['filter']} {_parameter_text(spec)}".removesuffix(" —") for spec in self.steps)


def _parameter_text(spec: dict) -> str:
    if "sigma" in spec:
        return f"σ={spec['sigma']:g}"
    return str(spec["window"]) if "window" in spec else "—"


@dataclass
class TaskSearch:
    """Every candidate of one task in search order, and the winner."""

    task: str
    candidates: list[Candidate]
    best: Candidate

    @property
    def metric_key(self) -> str:
        return TASKS[self.task].metric_key

    def is_paper_default(self, candidate: Candidate) -> bool:
        """Whether `candidate` is one filter at the paper's parameter for the task (`default_smoothing_policy`)."""
        return candidate.kind in PARAMETRIC_FILTERS and candidate.entry == _paper_entry(self.task, candidate.kind)

    def paper_candidate(self, kind: str) -> Candidate:
        return next(c for c in self.candidates if c.entry == _paper_entry(self.task, kind))

    @property
    def paper_scores(self) -> dict[str, float]:
        """The score of each filter at the paper's parameter: Table 9's rows."""
        return {kind: self.paper_candidate(kind).score for kind in PARAMETRIC_FILTERS}

    def best_of(self, kind: str) -> Candidate:
        """The best candidate of one filter kind (or of one chain's kinds, "median → gaussian")."""
        return max((c for c in self.candidates if c.kind == kind), key=lambda c: c.score)

    @property
    def best_chain(self) -> Candidate:
        return max((c for c in self.candidates if c.complexity == 2), key=lambda c: c.score)


def _paper_entry(task: str, kind: str) -> dict:
    return default_smoothing_policy([task], kind)[task]


@dataclass
class SmoothingSearch:
    """The search over the tasks of a model: `policy` is the winner per task, a model config's `smoothing_policy`."""

    tasks: dict[str, TaskSearch]
    num_frames: int
    num_videos: int

    @property
    def policy(self) -> dict:
        return {name: search.best.entry for name, search in self.tasks.items()}

    def to_dict(self) -> dict:
        return {
            "num_frames": self.num_frames,
            "num_videos": self.num_videos,
            "policy": self.policy,
            "tasks": {
                name: {
                    "metric": search.metric_key,
                    "chosen": {"policy": search.best.entry, "score": search.best.score},
                    "paper": search.paper_scores,
                    "candidates": [{"policy": c.entry, "score": c.score} for c in search.candidates],
                }
                for name, search in self.tasks.items()
            },
        }

    def table_9(self) -> str:
        """The search in the form of the paper's Table 9, one column per task: no smoothing, each filter at the
        paper's parameter (★) and at its best, the best chain of two, and the chosen policy."""
        names = list(self.tasks)
        header = "| filter | " + " | ".join(f"{name.upper()} ({self.tasks[name].metric_key})" for name in names) + " |"
        lines = [header, "|---|" + "---:|" * len(names)]

        def row(label, candidates):
            cells = [f"{c.score:.4f} ({c.description})" for c in candidates]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")

        row("none", [self.tasks[name].best_of("none") for name in names])
        for kind in PARAMETRIC_FILTERS:
            row(f"{kind} ★", [self.tasks[name].paper_candidate(kind) for name in names])
            row(f"{kind}, best", [self.tasks[name].best_of(kind) for name in names])
        row("chain of two, best", [self.tasks[name].best_chain for name in names])
        chosen = [self.tasks[name].best for name in names]
        lines.append("| **chosen** | " + " | ".join(f"**{c.score:.4f}** ({c.description})" for c in chosen) + " |")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """`table_9` and, per task, every candidate: ★ marks the paper's parameter, **bold** the chosen policy."""
        lines = [
            "# Smoothing chosen on validation (paper Table 9)",
            "",
            f"{self.num_frames} frames of {self.num_videos} videos; each score is the task's challenge metric after "
            "the nearest-frame fill and the policy. ★ the paper's parameter (tasks.py), **bold** the chosen policy.",
            "",
            self.table_9(),
        ]
        for name, search in self.tasks.items():
            lines += ["", f"## {name.upper()}: every candidate", "", f"| filter | parameter | {search.metric_key} |"]
            lines.append("|---|---|---:|")
            for candidate in search.candidates:
                parameter = candidate.parameter + (" ★" if search.is_paper_default(candidate) else "")
                score = f"{candidate.score:.4f}"
                if candidate is search.best:
                    score = f"**{score}** (chosen)"
                lines.append(f"| {candidate.kind} | {parameter} | {score} |")
        return "\n".join(lines) + "\n"


def candidate_policies(task: str) -> list[dict]:
    """The single-filter entries searched for `task`, in search order: none, then each filter over its grid (the
    paper's value included)."""
    spec = TASKS[task]
    grids = {
        "sigma": sorted({*SIGMA_GRID, float(spec.smoothing_sigma)}),
        "window": sorted({*WINDOW_GRID, int(spec.smoothing_window)}),
    }
    entries = [{"filter": "none"}]
    for kind in PARAMETRIC_FILTERS:
        parameter = SMOOTHING_FILTERS[kind]
        entries += [{"filter": kind, parameter: value} for value in grids[parameter]]
    return entries


def chain_policies(singles: Sequence[Candidate]) -> list[list[dict]]:
    """Chains of two: the ordered pairs of different filter kinds among the best `CHAIN_SEEDS_PER_FILTER` scored
    filters of each kind (best first; the first in search order among equal scores)."""
    seeds = []
    for kind in PARAMETRIC_FILTERS:
        of_kind = [c for c in singles if c.kind == kind]
        seeds += sorted(of_kind, key=lambda c: -c.score)[:CHAIN_SEEDS_PER_FILTER]
    return [[first.entry, second.entry] for first in seeds for second in seeds if first.kind != second.kind]


def search_smoothing(
    predictions: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    videos,
    has_face,
    tasks: Sequence[str] | None = None,
) -> SmoothingSearch:
    """Search the smoothing policy of each task on validation predictions (module docstring).

    Args:
        predictions: task -> (N, C) raw predictions of every validation frame (AU and EXPR probabilities, VA values),
            e.g. `evaluation.predict_frame_table(...).predictions`.
        labels: task -> the frames' labels, with the "no label" markers.
        videos: (N,) the video of each frame.
        has_face: (N,) bool, False where the frame was not predicted (filled from the nearest frame with a face).
        tasks: the tasks to search; default every task of `predictions`.
    """
    tasks = validate_tasks(list(predictions) if tasks is None else tasks)
    # Integer video codes: postprocess_by_video groups frames by video on every call, which is faster on integers.
    _, video_codes = np.unique(np.asarray(videos), return_inverse=True)
    filled = postprocess_by_video(
        {name: predictions[name] for name in tasks}, video_codes, has_face, {name: {"filter": "none"} for name in tasks}
    )
    searches = {}
    for name in tasks:
        task = TASKS[name]

        def score(entry, name=name, task=task) -> Candidate:
            smoothed = postprocess_by_video({name: filled[name]}, video_codes, None, {name: entry})
            metrics = compute_abaw_metrics(smoothed, {name: labels[name]}, [name])
            if task.metric_key not in metrics:
                raise ValueError(f"No labelled frame of task {name!r} to choose its smoothing on.")
            return Candidate(validate_smoothing_policy({name: entry})[name], metrics[task.metric_key])

        singles = [score(entry) for entry in candidate_policies(name)]
        candidates = singles + [score(chain) for chain in chain_policies(singles)]
        best = max(enumerate(candidates), key=lambda item: (item[1].score, -item[1].complexity, -item[0]))[1]
        searches[name] = TaskSearch(name, candidates, best)
    return SmoothingSearch(searches, len(video_codes), int(video_codes.max()) + 1 if len(video_codes) else 0)


def plot_smoothing_search(search: SmoothingSearch, path: str | os.PathLike) -> None:
    """Per task: the score against the parameter of each filter kind (★ the paper's, ○ the winner when it is one
    filter; dotted: none), and below it the chains of two (the winner in red, the best single filter dashed)."""
    names = list(search.tasks)
    figure = Figure(figsize=(5.5 * len(names), 8))
    axes = figure.subplots(2, len(names), squeeze=False, gridspec_kw={"height_ratios": [1, 1.2]})
    for column, name in enumerate(names):
        task_search = search.tasks[name]
        top, bottom = axes[0, column], axes[1, column]
        singles = [c for c in task_search.candidates if c.complexity <= 1]
        top.axhline(task_search.best_of("none").score, color="grey", linestyle=":", label="none")
        for kind in PARAMETRIC_FILTERS:
            of_kind = [c for c in singles if c.kind == kind]
            x = [c.steps[0][SMOOTHING_FILTERS[kind]] for c in of_kind]
            (line,) = top.plot(x, [c.score for c in of_kind], marker=".", label=f"{kind} ({SMOOTHING_FILTERS[kind]})")
            for c, value in zip(of_kind, x):
                if task_search.is_paper_default(c):
                    top.plot(value, c.score, "*", markersize=14, color=line.get_color())
                if c is task_search.best:
                    top.plot(value, c.score, "o", markersize=14, fillstyle="none", color="red")
        top.set(xscale="log", xlabel="sigma / window (frames)", ylabel=task_search.metric_key, title=name.upper())
        top.grid(alpha=0.3)
        top.legend(fontsize=8)
        chains = sorted((c for c in task_search.candidates if c.complexity == 2), key=lambda c: c.score)
        colours = ["red" if c is task_search.best else "tab:blue" for c in chains]
        bottom.barh([c.description for c in chains], [c.score for c in chains], color=colours)
        bottom.axvline(max(c.score for c in singles), color="black", linestyle="--", label="best single filter")
        low, high = min(c.score for c in chains), max(c.score for c in task_search.candidates)
        bottom.set_xlim(low - 0.1 * (high - low + 1e-3), high + 0.05 * (high - low + 1e-3))
        bottom.tick_params(axis="y", labelsize=7)
        bottom.set(xlabel=task_search.metric_key, title="chains of two")
        bottom.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)


def write_search_report(search: SmoothingSearch, folder: str | os.PathLike) -> list[Path]:
    """FOLDER/smoothing_search.md, .json and .png; returns their paths."""
    folder = Path(folder)
    paths = [folder / name for name in SMOOTHING_SEARCH_FILES]
    write_text(paths[0], search.to_markdown())
    write_json(paths[1], search.to_dict())
    plot_smoothing_search(search, paths[2])
    return paths


def store_smoothing_policy(folder: str | os.PathLike, policy: Mapping, search: SmoothingSearch) -> None:
    """Write `policy` into folder/config.json (atomically), the search report beside it, and the model card again
    when the folder has one made by this package (it states the policy)."""
    # Imported here: the card writer pulls in huggingface_hub's card machinery, which the search itself does without.
    from .hub.cards import write_model_card
    from .train import EVAL_RESULTS_FILE

    folder = Path(folder)
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except ValueError as error:
        raise InputError(f"{config_path}: not valid JSON ({error})") from None
    config["smoothing_policy"] = dict(policy)
    write_json(config_path, config, sort_keys=True)
    write_search_report(search, folder)
    if (folder / "README.md").is_file() and (folder / EVAL_RESULTS_FILE).is_file():
        write_model_card(folder)
