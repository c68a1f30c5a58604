"""The demo's report: test-set metrics with bootstrap confidence intervals, the paper's ablations, results.md/json,
the README section and the figures.

The demo (`modeling_abaw.demo`) trains the models and predicts the test frames; this module only measures and shows.

- `bootstrap_report`: every model's `compute_abaw_metrics` on all test frames, with a 95 % percentile bootstrap
  confidence interval over test VIDEOS (frames of one video are not independent, videos are), and the paper's
  ablations as paired differences: every model is scored on the same resampled video sets.
- `write_demo_report`: results.json (deterministic: two runs of the same settings give the same bytes),
  durations.json, results.md and the figures; `readme_section` renders the README's block from results.json alone.
- `plot_mae_reconstructions`: original / masked / reconstructed faces, what every MAE user looks at first.

A resample's metrics are exact functions of sums of per-video statistics: per-class true/false positive and false
negative counts for F1, and the moments (n, Σx, Σy, Σx², Σy², Σxy) for CCC. Each resample is then a weighted sum of
per-video statistics (the weight of a video is how often it was drawn), so 1000 resamples of 6 models take
milliseconds instead of recomputing metrics on concatenated frames.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from .io import atomic_path, write_json, write_text
from .metrics import classification_counts, compute_abaw_metrics, confusion_matrix, f1_from_counts
from .modeling_face_mae import FaceMAEForPreTraining, face_image_processor
from .tasks import TASKS, AffectTask, get_task

CONFIDENCE = 0.95
DIGITS = 4  # of every float in results.json: stable bytes across runs, finer than any difference the CIs resolve

# The figures `write_demo_report` (and `plot_mae_reconstructions`, `plot_training_curves`) write, as the README
# links them.
FIGURES = (
    "scores.png",
    "ablations.png",
    "per_au_f1.png",
    "expr_confusion.png",
    "va_over_time.png",
    "mae_reconstructions.png",
    "training_curves.png",
)
FIGURE_DIR = "docs/demo"


@dataclass(frozen=True)
class TestSet:
    """The test frame table: each frame's video name (a video is one contiguous run of rows) and the official
    labels with their "no label" markers (task -> AU (N, 12), EXPR (N,), VA (N, 2))."""

    __test__ = False  # not a pytest test class

    videos: np.ndarray
    labels: dict[str, np.ndarray]


@dataclass(frozen=True)
class Ablation:
    """One of the paper's claims, measured as `variant` minus `baseline` on each of `metrics`: the paper says the
    variant scores higher (every metric here is higher-is-better)."""

    name: str
    paper: str
    baseline: str
    variant: str
    metrics: tuple[str, ...]


# The model names are those the demo passes to `bootstrap_report`; an ablation whose models are not all there is
# skipped (a tiny configuration may train fewer models).
CHANCE = "chance level"
FRAME_RANDOM_INIT = "frame model (random init)"
FRAME_MAE_INIT = "frame model (MAE init)"
FRAME_SMOOTHED = "frame model + smoothing"
TMF_VISION = "TMF vision-only + smoothing"
TMF_AUDIO_VISUAL = "TMF audio-visual + smoothing"

ABLATIONS: tuple[Ablation, ...] = (
    Ablation("MAE pre-training vs random init", "Sec. 3.1", FRAME_RANDOM_INIT, FRAME_MAE_INIT,
             ("score", "au_f1", "expr_f1", "va_ccc")),
    Ablation("TMF vs frame model", "Table 7", FRAME_SMOOTHED, TMF_AUDIO_VISUAL,
             ("score", "au_f1", "expr_f1", "va_ccc")),
    Ablation("audio-visual vs vision-only TMF", "Table 8", TMF_VISION, TMF_AUDIO_VISUAL,
             ("va_ccc/valence", "va_ccc/arousal", "expr_f1")),
    Ablation("smoothing vs none", "Table 9", FRAME_MAE_INIT, FRAME_SMOOTHED, ("au_f1", "expr_f1", "va_ccc")),
)  # fmt: skip

# The models whose per-AU F1 the bars compare (those present).
PER_AU_MODELS = (FRAME_SMOOTHED, TMF_AUDIO_VISUAL)


# -- bootstrap -------------------------------------------------------------------------------------------------------


def video_bounds(videos) -> np.ndarray:
    """Row boundaries of the videos of a frame table: video i is rows bounds[i]:bounds[i + 1]."""
    videos = np.asarray(videos)
    starts = np.flatnonzero(np.r_[True, videos[1:] != videos[:-1]])
    if len(starts) != len(np.unique(videos)):
        raise ValueError("each test video must be one contiguous run of rows of the frame table")
    return np.r_[starts, len(videos)]


def resample_weights(num_videos: int, num_resamples: int, seed: int) -> np.ndarray:
    """(num_resamples, num_videos): how often each video is drawn in each resample (videos drawn with replacement,
    as many as there are), from `numpy.random.default_rng(seed)`."""
    draws = np.random.default_rng(seed).integers(0, num_videos, size=(num_resamples, num_videos))
    offsets = num_videos * np.arange(num_resamples)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=num_resamples * num_videos).reshape(draws.shape)


def _ccc_moments(predictions: np.ndarray, labels: np.ndarray, labelled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame terms (N, C, 6) of the moments n, Σx, Σy, Σx², Σy², Σxy of each dimension's labelled frames, and
    the shift (C,) of the mean difference.

    x and y are shifted by their first labelled value, as `concordance_correlation_coefficient` does: a constant
    series then has moments of exactly 0 and its CCC is exactly 0.0; and sums of small numbers lose less precision.
    """
    first = labelled.argmax(0)  # the first labelled frame of each dimension (0 if none: its n is 0 anyway)
    columns = np.arange(labels.shape[1])
    x_shift, y_shift = predictions[first, columns], labels[first, columns]
    x = np.where(labelled, predictions - x_shift, 0.0)
    y = np.where(labelled, labels - y_shift, 0.0)
    return np.stack([labelled * 1.0, x, y, x * x, y * y, x * y], axis=-1), x_shift - y_shift


def _ccc_from_moments(moments: np.ndarray, mean_shift: np.ndarray) -> np.ndarray:
    """CCC from summed moments (..., C, 6), with `concordance_correlation_coefficient`'s conventions: population
    moments, clipped to [-1, 1], 0.0 for a zero denominator (no frame, or both series constant and equal)."""
    n, sum_x, sum_y, sum_xx, sum_yy, sum_xy = np.moveaxis(moments, -1, 0)
    count = np.maximum(n, 1)
    mean_x, mean_y = sum_x / count, sum_y / count
    covariance = sum_xy / count - mean_x * mean_y
    denominator = sum_xx / count - mean_x**2 + sum_yy / count - mean_y**2 + (mean_shift + mean_x - mean_y) ** 2
    valid = (n > 0) & (denominator > 0)
    ccc = np.divide(2 * covariance, denominator, out=np.zeros(denominator.shape), where=valid)
    return np.clip(ccc, -1.0, 1.0)


class _TaskStatistics:
    """Per-video sufficient statistics of one model's predictions on one task, and the per-class metric of any
    weighting of the videos.

    The one dispatch on the task kind of this module: F1 is a function of class counts, CCC of moments (numpy).
    """

    def __init__(self, task: AffectTask, predictions, labels, bounds: np.ndarray):
        predictions, labels = np.asarray(predictions), np.asarray(labels)
        self.task = task
        rows = list(zip(bounds[:-1], bounds[1:]))
        labelled = task.is_labelled(labels)
        self.labelled = np.array([labelled[start:stop].sum() for start, stop in rows], dtype=np.float64)
        if task.is_regression:
            terms, self.mean_shift = _ccc_moments(predictions.astype(np.float64), labels.astype(np.float64), labelled)
            self.per_video = np.add.reduceat(terms, bounds[:-1], axis=0)  # (V, C, 6)
        else:
            self.per_video = np.stack(
                [classification_counts(task, predictions[start:stop], labels[start:stop]) for start, stop in rows]
            ).astype(np.float64)  # (V, 3, C)

    def per_class(self, weights: np.ndarray) -> np.ndarray:
        """(R, C) per-class metric of each row of `weights` (R, V); NaN rows where the task has no labelled frame
        (`compute_abaw_metrics` does not score it there)."""
        summed = np.tensordot(weights, self.per_video, axes=1)
        if self.task.is_regression:
            values = _ccc_from_moments(summed, self.mean_shift)
        else:
            values = f1_from_counts(summed[:, 0], summed[:, 1], summed[:, 2])
        values[weights @ self.labelled == 0] = np.nan
        return values


def resampled_metrics(test: TestSet, predictions: Mapping, weights: np.ndarray) -> dict[str, np.ndarray]:
    """`compute_abaw_metrics` of each weighting of the test videos (rows of `weights`, (R, V)) at once: key -> (R,).

    Row r equals `compute_abaw_metrics` on the concatenation of video v's frames weights[r, v] times; a task without
    a labelled frame in a row is NaN there and adds nothing to its score, as `compute_abaw_metrics` leaves it out.
    """
    bounds = video_bounds(test.videos)
    metrics, score = {}, np.zeros(len(weights))
    for name, task in TASKS.items():
        if name not in predictions or name not in test.labels:
            continue
        per_class = _TaskStatistics(task, predictions[name], test.labels[name], bounds).per_class(weights)
        metrics[task.metric_key] = per_class.mean(1)
        metrics.update({f"{task.metric_key}/{label}": per_class[:, i] for i, label in enumerate(task.labels)})
        score += np.nan_to_num(metrics[task.metric_key])
    metrics["score"] = score
    return metrics


def _interval(value: float, samples: np.ndarray) -> dict:
    """The value and its percentile bootstrap interval; resamples where the metric is undefined are left out."""
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.nanpercentile(samples, [tail, 100 - tail])
    return {"value": float(value), "low": float(low), "high": float(high)}


def verdict(low: float, high: float) -> str:
    """Of a difference variant − baseline whose paper direction is positive: "shown" when its CI excludes 0 above,
    "opposite" when it excludes 0 below, "not shown" otherwise."""
    if low > 0:
        return "shown"
    if high < 0:
        return "opposite"
    return "not shown"


def bootstrap_report(
    test: TestSet,
    models: Mapping[str, Mapping[str, np.ndarray]],
    num_resamples: int = 1000,
    seed: int = 0,
    ablations: Sequence[Ablation] = ABLATIONS,
) -> dict:
    """Each model's metrics on the test frames with 95 % bootstrap CIs over test videos, and the ablations.

    Args:
        test: the test videos and labels.
        models: model name -> its predictions (task -> array), in the order of the tables.
        num_resamples, seed: the bootstrap; the same resampled video sets serve every model, so the differences of
            the ablations are paired. Identical inputs give identical output.
        ablations: the comparisons to report; those naming a model absent from `models` are skipped.

    Returns:
        A JSON-able dict: "bootstrap" (its parameters and the test-set size), "models" (a list, in `models` order, of
        {"name", "metrics": {key: {"value", "low", "high"}}} with every key of `compute_abaw_metrics`) and
        "ablations" (a list of one row per ablation and metric: its names, the difference with its CI, the verdict).
    """
    if not models:
        raise ValueError("bootstrap_report needs at least one model")
    num_videos = len(video_bounds(test.videos)) - 1
    weights = resample_weights(num_videos, num_resamples, seed)
    points, samples = {}, {}
    for name, predictions in models.items():
        points[name] = compute_abaw_metrics(predictions, test.labels)
        resampled = resampled_metrics(test, predictions, weights)
        samples[name] = {key: resampled[key] for key in points[name]}

    rows = []
    for ablation in ablations:
        if ablation.baseline not in models or ablation.variant not in models:
            continue
        baseline, variant = points[ablation.baseline], points[ablation.variant]
        for metric in ablation.metrics:
            if metric not in baseline or metric not in variant:
                continue
            difference = _interval(
                variant[metric] - baseline[metric],
                samples[ablation.variant][metric] - samples[ablation.baseline][metric],
            )
            rows.append(
                {
                    "ablation": ablation.name,
                    "paper": ablation.paper,
                    "baseline": ablation.baseline,
                    "variant": ablation.variant,
                    "metric": metric,
                    "difference": difference,
                    "verdict": verdict(difference["low"], difference["high"]),
                }
            )
    return {
        "bootstrap": {
            "confidence": CONFIDENCE,
            "resamples": num_resamples,
            "seed": seed,
            "unit": "test video",
            "videos": num_videos,
            "frames": len(test.videos),
        },
        "models": [
            {"name": name, "metrics": {key: _interval(points[name][key], samples[name][key]) for key in points[name]}}
            for name in models
        ],
        "ablations": rows,
    }


# -- results.json, results.md, README --------------------------------------------------------------------------------


def _rounded(data):
    """`data` as plain JSON values, floats rounded to `DIGITS` decimals (paths as strings)."""
    if isinstance(data, Mapping):
        return {str(key): _rounded(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_rounded(value) for value in data]
    if isinstance(data, float | np.floating):
        return round(float(data), DIGITS) + 0.0  # + 0.0: -0.0 (a CCC of -1e-17) is written 0.0
    if isinstance(data, np.integer):
        return int(data)
    if isinstance(data, Path):
        return str(data)
    return data


def _main_columns() -> list[tuple[str, str]]:
    """(metric key, header) of the main table: each task's challenge metric, VA's dimensions beside their mean (the
    mean hides a dimension that fails), and the score."""
    columns = []
    for task in TASKS.values():
        metric = task.metric_key.split("_")[-1].upper()  # "F1", "CCC"
        if task.is_regression:
            columns += [(f"{task.metric_key}/{label}", f"{label} {metric}") for label in task.labels]
        columns.append((task.metric_key, f"{task.name.upper()} {metric}"))
    return columns + [("score", "score")]


def _with_interval(interval: dict | None, signed: bool = False) -> str:
    if interval is None:
        return "–"
    sign = "+" if signed else ""
    return f"{interval['value']:{sign}.3f} [{interval['low']:{sign}.2f}, {interval['high']:{sign}.2f}]"


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] | None = None) -> str:
    """A Markdown table; the `numeric` columns (default all but the first) are right-aligned."""
    numeric = range(1, len(header)) if numeric is None else numeric
    align = ["---:" if column in numeric else "---" for column in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main_table(results: dict) -> str:
    """model | AU F1 | EXPR F1 | valence CCC | arousal CCC | VA CCC | score, each "value [low, high]"."""
    columns = _main_columns()
    rows = [
        [model["name"]] + [_with_interval(model["metrics"].get(key)) for key, _ in columns]
        for model in results["models"]
    ]
    return _markdown_table(["model"] + [header for _, header in columns], rows)


def ablation_table(results: dict) -> str:
    """ablation | paper | metric | difference [CI] | verdict, one row per ablation and metric."""
    rows = [
        [row["ablation"], row["paper"], row["metric"], _with_interval(row["difference"], signed=True), row["verdict"]]
        for row in results["ablations"]
    ]
    return _markdown_table(["ablation", "paper", "metric", "difference [95 % CI]", "verdict"], rows, numeric=[3])


def seed_conclusions(runs: Sequence[dict]) -> list[dict]:
    """The ablations of several runs (results.json dicts of different seeds) side by side, with one conclusion per
    row: the verdict all runs agree on, "not shown" where they differ (an effect that flips with the seed is not an
    effect). Rows are matched by ablation and metric; those missing from a run are left out."""
    keyed = [{(row["ablation"], row["metric"]): row for row in run["ablations"]} for run in runs]
    rows = []
    for key in keyed[0]:
        if not all(key in run for run in keyed):
            continue
        verdicts = {run[key]["verdict"] for run in keyed}
        conclusion = verdicts.pop() if len(verdicts) == 1 else "not shown"
        rows.append(
            {"ablation": key[0], "metric": key[1], "runs": [run[key] for run in keyed], "conclusion": conclusion}
        )
    return rows


def seed_table(runs: Sequence[dict]) -> str:
    """ablation | metric | each seed's difference [CI] (verdict) | conclusion."""
    header = ["ablation", "metric"] + [f"seed {run['settings']['seed']}" for run in runs] + ["conclusion"]
    rows = [
        [row["ablation"], row["metric"]]
        + [f"{_with_interval(r['difference'], signed=True)} ({r['verdict']})" for r in row["runs"]]
        + [row["conclusion"]]
        for row in seed_conclusions(runs)
    ]
    return _markdown_table(header, rows, numeric=list(range(2, 2 + len(runs))))


def ablation_models(results: dict) -> str:
    """What each ablation's difference is: "variant − baseline" in model names."""
    compared = {row["ablation"]: f"{row['variant']} − {row['baseline']}" for row in results["ablations"]}
    return "\n".join(f"- {ablation}: {difference}" for ablation, difference in compared.items())


def per_class_tables(results: dict) -> str:
    """Per-class F1 of each classification task (per AU, per expression), one row per model (point values)."""
    tables = []
    for task in TASKS.values():
        if task.is_regression:  # valence and arousal are columns of the main table
            continue
        keys = [f"{task.metric_key}/{label}" for label in task.labels]
        rows = [
            [model["name"]]
            + [f"{model['metrics'][key]['value']:.3f}" if key in model["metrics"] else "–" for key in keys]
            for model in results["models"]
        ]
        title = f"Per-class {task.metric_key.split('_')[-1].upper()} of {task.name.upper()}"
        tables.append(f"### {title}\n\n" + _markdown_table(["model", *task.labels], rows))
    return "\n\n".join(tables)


def _key_values(values: Mapping) -> str:
    return ", ".join(f"{key} {value}" for key, value in values.items())


def _bootstrap_note(results: dict) -> str:
    bootstrap = results["bootstrap"]
    return (
        f"Each value with its {bootstrap['confidence'] * 100:.0f} % percentile bootstrap confidence interval over the "
        f"{bootstrap['videos']} test videos ({bootstrap['frames']} frames; {bootstrap['resamples']} resamples of "
        f"the videos, the same for every model, so the ablations' differences are paired). An ablation is "
        '"shown" when its interval excludes 0 in the paper\'s direction, "opposite" when it excludes 0 the other way.'
    )


def _total_minutes(durations: Mapping[str, float]) -> str:
    return f"{sum(durations.values()) / 60:.1f} min"


def readme_section(results: dict, durations: Mapping[str, float] | None = None) -> str:
    """The README's demo block: main table, ablation table, a settings/machine/duration line and the figures.

    A pure function of the results.json dict (and durations.json's, for the duration), so a script can regenerate
    the README from the last run's files: `readme_section(json.loads(results.read_text()), json.loads(...))`.
    """
    line = f"Settings: {_key_values(results['settings'])}. Machine: {_key_values(results['machine'])}."
    if durations:
        line += f" Duration: {_total_minutes(durations)}."
    figures = " ".join(f"![{name.removesuffix('.png')}]({FIGURE_DIR}/{name})" for name in FIGURES)
    return "\n\n".join([_bootstrap_note(results), main_table(results), ablation_table(results), line, figures]) + "\n"


def results_markdown(results: dict, durations: Mapping[str, float]) -> str:
    """results.md: the note, the main and ablation tables, per-class tables, settings, machine and durations."""
    settings = _markdown_table(
        ["setting", "value"], [[key, str(value)] for key, value in results["settings"].items()], []
    )
    machine = _markdown_table(["machine", ""], [[key, str(value)] for key, value in results["machine"].items()], [])
    stages = [[stage, f"{seconds:.1f}"] for stage, seconds in durations.items()]
    timing = _markdown_table(["stage", "seconds"], stages + [["total", f"{sum(durations.values()):.1f}"]])
    return (
        "\n\n".join(
            [
                "# modeling-abaw demo results",
                "Test-set scores of the demo on SynthAffect, a procedural sanity dataset: they show whether each stage "
                "learns what the data encodes, not how well affect is recognised in the wild.",
                _bootstrap_note(results),
                "## Models\n\n" + main_table(results),
                "## Ablations (the paper's claims)\n\n" + ablation_table(results) + "\n\n" + ablation_models(results),
                "## Per class\n\n" + per_class_tables(results),
                "## Settings\n\n" + settings,
                "## Machine\n\n" + machine,
                "## Durations\n\n" + timing,
            ]
        )
        + "\n"
    )


def write_demo_report(
    report: dict,
    output: Path,
    settings: Mapping,
    machine: Mapping,
    durations: Mapping[str, float],
    test: TestSet,
    models: Mapping[str, Mapping[str, np.ndarray]],
    confusion_model: str,
    timeline_video: str,
    timeline_models: Sequence[str],
) -> str:
    """Write results.json, durations.json, results.md and the figures into `output`; return the README section.

    Args:
        report: `bootstrap_report(test, models, ...)`.
        settings, machine: JSON-able dicts (the demo's settings; CPU model, torch threads, dtype), stored in
            results.json, which must not vary between two runs of the same settings.
        durations: stage -> seconds, disjoint stages (their sum is the total); durations.json and results.md only.
        test, models: what `report` was computed from; the confusion matrix and the timeline need frames.
        confusion_model: the model whose EXPR confusion matrix is drawn (the best frame-level one).
        timeline_video, timeline_models: the test video whose valence/arousal over time is drawn, and the models.
    """
    output = Path(output)
    results = _rounded({"settings": settings, "machine": machine, **report})
    durations = {stage: round(float(seconds), 1) for stage, seconds in durations.items()}
    write_json(output / "results.json", results, sort_keys=True)
    write_json(output / "durations.json", durations)
    write_text(output / "results.md", results_markdown(results, durations))
    plot_scores(results, output / "scores.png")
    plot_ablations(results, output / "ablations.png")
    plot_per_au_f1(results, output / "per_au_f1.png")
    plot_expr_confusion(test, models[confusion_model], confusion_model, output / "expr_confusion.png")
    plot_va_over_time(
        test, {name: models[name] for name in timeline_models}, timeline_video, output / "va_over_time.png"
    )
    plot_training_curves(output)
    return readme_section(json.loads((output / "results.json").read_text()), durations)


# -- figures ---------------------------------------------------------------------------------------------------------

VERDICT_COLOURS = {"shown": "tab:green", "opposite": "tab:red", "not shown": "tab:gray"}


def _save_figure(figure, path: Path) -> None:
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)


def _error_bars(interval: dict) -> list[list[float]]:
    return [[interval["value"] - interval["low"]], [interval["high"] - interval["value"]]]


def plot_scores(results: dict, path: Path) -> None:
    """One panel per main-table metric: each model's value and CI, on an axis zoomed to the data."""
    columns = _main_columns()
    models = results["models"]
    figure = Figure(figsize=(14, 2.2 + 0.7 * len(models)))
    axes = figure.subplots(2, (len(columns) + 1) // 2, sharey=True, squeeze=False).ravel()
    colours = [f"C{i % 10}" for i in range(len(models))]
    for axis, (key, header) in zip(axes, columns):
        for row, (model, colour) in enumerate(zip(models, colours)):
            if key in model["metrics"]:
                interval = model["metrics"][key]
                axis.errorbar(interval["value"], row, xerr=_error_bars(interval), fmt="o", color=colour, capsize=3)
        axis.set_title(header)
        axis.margins(x=0.15)
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(models)), [model["name"] for model in models])
    axes[0].invert_yaxis()  # the first model on top, as in the table
    for axis in axes[len(columns) :]:
        axis.set_visible(False)
    bootstrap = results["bootstrap"]
    figure.suptitle(
        f"SynthAffect test videos (sanity data): value and {bootstrap['confidence'] * 100:.0f} % bootstrap CI over "
        f"{bootstrap['videos']} videos"
    )
    _save_figure(figure, path)


def plot_ablations(results: dict, path: Path) -> None:
    """Each ablation's difference (variant − baseline) with its CI, a zero line, coloured by verdict."""
    rows = results["ablations"]
    figure = Figure(figsize=(10, 1.5 + 0.4 * max(len(rows), 1)))
    axis = figure.subplots()
    for position, row in enumerate(rows):
        difference = row["difference"]
        axis.errorbar(
            difference["value"], position, xerr=_error_bars(difference), fmt="o", capsize=3,
            color=VERDICT_COLOURS[row["verdict"]],
        )  # fmt: skip
    axis.axvline(0, color="black", linewidth=1)
    axis.set_yticks(range(len(rows)), [f"{row['ablation']} ({row['paper']}): {row['metric']}" for row in rows])
    axis.invert_yaxis()
    if not rows:
        axis.text(0.5, 0.5, "no ablation: its models were not trained", ha="center", transform=axis.transAxes)
    handles = [Line2D([], [], marker="o", linestyle="", color=colour) for colour in VERDICT_COLOURS.values()]
    axis.legend(handles, list(VERDICT_COLOURS), fontsize=8, loc="best")
    axis.set(title="The paper's ablations: difference and 95 % paired bootstrap CI",
             xlabel="variant − baseline (> 0: the paper's direction)")  # fmt: skip
    axis.grid(axis="x", alpha=0.3)
    _save_figure(figure, path)


def plot_per_au_f1(results: dict, path: Path, model_names: Sequence[str] = PER_AU_MODELS) -> None:
    """Per-AU F1 bars with their CIs, of `model_names` (those present; every model if none is)."""
    task = get_task("au")
    models = [model for model in results["models"] if model["name"] in model_names] or results["models"]
    figure = Figure(figsize=(11, 4))
    axis = figure.subplots()
    width = 0.8 / len(models)
    positions = np.arange(task.num_outputs)
    for i, model in enumerate(models):
        intervals = [model["metrics"].get(f"{task.metric_key}/{label}") for label in task.labels]
        values = [interval["value"] if interval else np.nan for interval in intervals]
        errors = np.array([_error_bars(interval) if interval else [[0], [0]] for interval in intervals])[..., 0].T
        offset = (i - (len(models) - 1) / 2) * width
        axis.bar(positions + offset, values, width, yerr=errors, capsize=2, label=model["name"])
    axis.set_xticks(positions, task.labels)
    axis.set(title="F1 per action unit with its 95 % bootstrap CI, SynthAffect test videos", ylabel="F1", ylim=(0, 1))
    axis.legend(fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    _save_figure(figure, path)


def plot_expr_confusion(test: TestSet, predictions: Mapping, model_name: str, path: Path) -> None:
    """The row-normalised EXPR confusion matrix of one model on the labelled test frames."""
    task = get_task("expr")
    confusion = confusion_matrix(task, predictions[task.name], test.labels[task.name]).astype(np.float64)
    totals = confusion.sum(1, keepdims=True)
    normalised = np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)
    figure = Figure(figsize=(7, 6))
    axis = figure.subplots()
    image = axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for (true, predicted), value in np.ndenumerate(normalised):
        colour = "white" if value > 0.5 else "black"
        axis.text(predicted, true, f"{value:.2f}", ha="center", va="center", fontsize=8, color=colour)
    ticks = range(task.num_outputs)
    axis.set_xticks(ticks, task.labels, rotation=45, ha="right")
    axis.set_yticks(ticks, [f"{label} ({int(total)})" for label, total in zip(task.labels, totals[:, 0])])
    axis.set(xlabel="predicted", ylabel="true (frames)", title=f"{model_name}: expressions (rows normalised)")
    figure.colorbar(image, ax=axis, fraction=0.046)
    _save_figure(figure, path)


def plot_va_over_time(test: TestSet, models: Mapping[str, Mapping], video: str, path: Path) -> None:
    """Predicted and true valence (top) and arousal (bottom) over the frames of one test video."""
    task = get_task("va")
    rows = np.flatnonzero(np.asarray(test.videos) == video)
    if not len(rows):
        raise ValueError(f"video {video!r} is not in the test set")
    labels = np.asarray(test.labels[task.name], dtype=np.float64)[rows]
    labels[~task.is_labelled(labels)] = np.nan  # gaps where a frame has no label
    figure = Figure(figsize=(11, 5.5))
    axes = figure.subplots(task.num_outputs, 1, sharex=True, squeeze=False)[:, 0]
    for dimension, (axis, label) in enumerate(zip(axes, task.labels)):
        axis.plot(labels[:, dimension], color="black", linewidth=2, label="label")
        for name, predictions in models.items():
            axis.plot(np.asarray(predictions[task.name])[rows, dimension], linewidth=1.2, label=name)
        axis.set(title=f"{label}, test video {video}", ylabel=label, ylim=(-1.05, 1.05))
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    axes[-1].set_xlabel("frame")
    _save_figure(figure, path)


def plot_training_curves(output: Path) -> None:
    runs = [path.parent for path in sorted(output.glob("*/history.json"))]
    figure = Figure(figsize=(12, 4.5))
    axes = figure.subplots(1, 2)
    for run in runs:
        history = json.loads((run / "history.json").read_text())
        train = history.get("train", [])
        if train:
            axes[0].plot([e["step"] for e in train], [e["loss"] for e in train], label=run.name)
        evals = [e for e in history.get("eval", []) if "smoothed/score" in e]
        if evals:
            axes[1].plot([e["step"] for e in evals], [e["smoothed/score"] for e in evals], marker="o", label=run.name)
    axes[0].set(title="training loss", xlabel="optimizer step", yscale="log")
    axes[1].set(title="validation score (AU F1 + EXPR F1 + VA CCC, smoothed)", xlabel="optimizer step")
    for axis in axes:
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    _save_figure(figure, output / "training_curves.png")


@torch.inference_mode()
def plot_mae_reconstructions(
    model: FaceMAEForPreTraining, images: Sequence[Image.Image], path: Path, seed: int = 0
) -> None:
    """Rows: face crops; columns: original, masked (grey patches) and reconstruction (the model's predicted patches
    where masked, the visible patches as they are), as the MAE paper shows them.

    The masks come from seeded noise, so the figure is deterministic. With `norm_pix_loss` the model predicts each
    patch normalised by its own mean and variance: the masked patches are de-normalised with the original patch's
    statistics, as MAE's visualisation does (the model never sees them; only the picture uses them).
    """
    config = model.config
    processor = face_image_processor(config)
    pixel_values = processor([image.convert("RGB") for image in images], return_tensors="pt")["pixel_values"]
    num_patches = (config.image_size // config.patch_size) ** 2
    noise = torch.rand(len(images), num_patches, generator=torch.Generator().manual_seed(seed))
    was_training = model.training
    model.eval()
    try:
        outputs = model(pixel_values=pixel_values.to(model.dtype), noise=noise)
    finally:
        model.train(was_training)

    target = model.patchify(pixel_values)
    predicted = outputs.logits.float()
    if config.norm_pix_loss:
        predicted = predicted * (target.var(-1, keepdim=True) + 1.0e-6) ** 0.5 + target.mean(-1, keepdim=True)
    masked = model.unpatchify(outputs.mask.float().unsqueeze(-1).expand_as(target)).bool()
    mean = torch.tensor(processor.image_mean).view(1, -1, 1, 1)
    std = torch.tensor(processor.image_std).view(1, -1, 1, 1)
    original = pixel_values * std + mean
    reconstruction = model.unpatchify(predicted) * std + mean
    columns = {
        "original": original,
        f"masked ({config.mask_ratio:.0%} of the patches)": torch.where(masked, 0.5, original),
        "reconstruction + visible patches": torch.where(masked, reconstruction, original),
    }
    figure = Figure(figsize=(2.2 * len(columns), 2.2 * len(images) + 0.4))
    axes = figure.subplots(len(images), len(columns), squeeze=False)
    for column, (title, pictures) in enumerate(columns.items()):
        axes[0, column].set_title(title, fontsize=9)
        for row in range(len(images)):
            axes[row, column].imshow(pictures[row].permute(1, 2, 0).clamp(0, 1).numpy())
            axes[row, column].set_axis_off()
    figure.suptitle("FaceMAE reconstructions of test face crops", fontsize=10)
    _save_figure(figure, Path(path))
