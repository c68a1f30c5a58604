"""The per-input figure of `abaw predict`: what the model saw over time, at a glance.

Panels, for the tasks the predictions have: AU probabilities as a heat map (AU x time), the expression timeline, and
valence/arousal over time beside the valence-arousal plane (points coloured by time). Stretches without a detected
face (predictions filled from the nearest face frame) are shaded grey on the time axes. Built on a bare matplotlib
`Figure` (no pyplot): no GUI backend, no global state.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from ..io import atomic_path
from ..tasks import TASKS, AffectTask


def _draw_probability_map(figure: Figure, grid, row: int, axes, task: AffectTask, values, times, extent, marker):
    """Multilabel tasks (AU): every label's probability over time as a heat map, with its colour bar."""
    image = axes.imshow(
        values.T,
        aspect="auto",
        interpolation="nearest",
        cmap="magma",
        vmin=0,
        vmax=1,
        extent=(*extent, task.num_outputs - 0.5, -0.5),
    )
    axes.set_yticks(range(task.num_outputs), task.labels)
    figure.colorbar(image, cax=figure.add_subplot(grid[row, 1]), label="probability")
    axes.set_title(f"{task.name.upper()}: probability of each label", loc="left")


def _draw_class_timeline(figure: Figure, grid, row: int, axes, task: AffectTask, values, times, extent, marker):
    """Multiclass tasks (EXPR): the decided class over time."""
    classes = np.where(np.isnan(values).any(axis=1), np.nan, task.decisions(np.nan_to_num(values)))
    axes.step(times, classes, where="post", color="tab:blue", marker=marker)
    axes.set_yticks(range(task.num_outputs), task.labels)
    axes.set_ylim(-0.5, task.num_outputs - 0.5)
    axes.set_title(f"{task.name.upper()}: most probable class", loc="left")


def _draw_values(figure: Figure, grid, row: int, axes, task: AffectTask, values, times, extent, marker):
    """Regression tasks (VA): each value over time in [-1, 1], beside the plane of the first two (valence-arousal)."""
    for column, colour in zip(values.T, ("tab:orange", "tab:purple", "tab:green")):
        axes.plot(times, column, color=colour, marker=marker)
    axes.legend(task.labels, loc="upper right")
    axes.set_ylim(-1.05, 1.05)
    axes.axhline(0, color="grey", linewidth=0.5)
    axes.set_title(f"{task.name.upper()}: {' and '.join(task.labels)}", loc="left")
    _value_plane(figure, figure.add_subplot(grid[row, 2]), values, times, task.labels)


# The one dispatch on the kind of task: how its panel is drawn (matplotlib, which tasks.py cannot import), and the
# panel's height in inches.
PANELS = {
    "multilabel": (_draw_probability_map, 3.0),
    "multiclass": (_draw_class_timeline, 2.0),
    "regression": (_draw_values, 2.2),
}


def plot_predictions(table: pd.DataFrame, path: str | os.PathLike, title: str = "") -> None:
    """Write the figure of one input's predictions (the main face's: `face` 1 when there are several) to `path`
    (PNG, written atomically)."""
    if "face" in table:
        table = table[table["face"] == 1]
    times = table["timestamp"].to_numpy()
    tasks = [task for task in TASKS.values() if task.labels[0] in table]
    heights = [PANELS[task.kind][1] for task in tasks]
    has_plane = any(task.is_regression for task in tasks)
    figure = Figure(figsize=(12, 1.2 + sum(heights)), layout="constrained")
    # Columns: the time axes (aligned, shared), the colour bar, the plane of the regression values.
    grid = figure.add_gridspec(len(tasks), 3, width_ratios=[3, 0.05, 1 if has_plane else 0.01], height_ratios=heights)
    figure.suptitle(title)
    empty = table[list(tasks[0].labels)].isna().all(axis=None) if tasks else True
    extent = (times[0], times[-1] if len(times) > 1 else times[0] + 1)
    marker = "o" if len(times) == 1 else None  # a single frame (an image) draws no line
    axes = None
    for row, task in enumerate(tasks):
        axes = figure.add_subplot(grid[row, 0], sharex=axes)
        values = table[list(task.labels)].to_numpy(dtype=float)
        PANELS[task.kind][0](figure, grid, row, axes, task, values, times, extent, marker)
        axes.set_xlim(*extent)
        _shade_missing_faces(axes, times, table["has_face"].to_numpy())
        if empty:
            axes.text(0.5, 0.5, "no face found", transform=axes.transAxes, ha="center", va="center")
    if tasks:
        axes.set_xlabel("time (s)")
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)


def _value_plane(figure: Figure, axes, values: np.ndarray, times: np.ndarray, labels) -> None:
    points = axes.scatter(values[:, 0], values[:, 1], c=times, s=6, cmap="viridis")
    axes.add_patch(Circle((0, 0), 1, fill=False, color="grey", linewidth=0.5))
    axes.axhline(0, color="grey", linewidth=0.5)
    axes.axvline(0, color="grey", linewidth=0.5)
    axes.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xlabel=labels[0], ylabel=labels[1], aspect="equal")
    figure.colorbar(points, ax=axes, label="time (s)", shrink=0.8)


def _shade_missing_faces(axes, times: np.ndarray, has_face: np.ndarray) -> None:
    """Grey spans over the frames without a detected face, each from its time to the next frame's."""
    missing = np.r_[0, has_face == 0, 0].astype(np.int8)
    starts, stops = np.flatnonzero(np.diff(missing) == 1), np.flatnonzero(np.diff(missing) == -1)
    step = np.median(np.diff(times)) if len(times) > 1 else 1.0
    ends = np.r_[times[1:], times[-1] + step] if len(times) else times
    for start, stop in zip(starts, stops):
        axes.axvspan(times[start], ends[stop - 1], color="grey", alpha=0.2, linewidth=0)
