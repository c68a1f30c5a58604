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
from ..tasks import AU, EXPR, VA


def plot_predictions(table: pd.DataFrame, path: str | os.PathLike, title: str = "") -> None:
    """Write the figure of one input's predictions (the main face's: `face` 1 when there are several) to `path`
    (PNG, written atomically)."""
    if "face" in table:
        table = table[table["face"] == 1]
    times = table["timestamp"].to_numpy()
    panels = [task for task in (AU, EXPR, VA) if task.labels[0] in table]
    heights = {AU: 3.0, EXPR: 2.0, VA: 2.2}
    figure = Figure(figsize=(12, 1.2 + sum(heights[task] for task in panels)), layout="constrained")
    # Columns: the time axes (aligned, shared), the AU colour bar, the valence-arousal plane.
    grid = figure.add_gridspec(
        len(panels), 3, width_ratios=[3, 0.05, 1 if VA in panels else 0.01], height_ratios=[heights[t] for t in panels]
    )
    figure.suptitle(title)
    empty = table[list(panels[0].labels)].isna().all(axis=None) if panels else True
    extent = (times[0], times[-1] if len(times) > 1 else times[0] + 1)
    marker = "o" if len(times) == 1 else None  # a single frame (an image) draws no line
    axes = None
    for row, task in enumerate(panels):
        axes = figure.add_subplot(grid[row, 0], sharex=axes)
        values = table[list(task.labels)].to_numpy(dtype=float)
        if task is AU:
            image = axes.imshow(
                values.T,
                aspect="auto",
                interpolation="nearest",
                cmap="magma",
                vmin=0,
                vmax=1,
                extent=(*extent, len(AU.labels) - 0.5, -0.5),
            )
            axes.set_yticks(range(len(AU.labels)), AU.labels)
            figure.colorbar(image, cax=figure.add_subplot(grid[row, 1]), label="probability")
        elif task is EXPR:
            classes = np.where(np.isnan(values).any(axis=1), np.nan, np.nan_to_num(values).argmax(axis=1))
            axes.step(times, classes, where="post", color="tab:blue", marker=marker)
            axes.set_yticks(range(len(EXPR.labels)), EXPR.labels)
            axes.set_ylim(-0.5, len(EXPR.labels) - 0.5)
        else:
            for column, colour in zip(values.T, ("tab:orange", "tab:purple")):
                axes.plot(times, column, color=colour, marker=marker)
            axes.legend(VA.labels, loc="upper right")
            axes.set_ylim(-1.05, 1.05)
            axes.axhline(0, color="grey", linewidth=0.5)
            _valence_arousal_plane(figure, figure.add_subplot(grid[row, 2]), values, times)
        axes.set_title({AU: "action units", EXPR: "expression", VA: "valence and arousal"}[task], loc="left")
        axes.set_xlim(*extent)
        _shade_missing_faces(axes, times, table["face_detected"].to_numpy())
        if empty:
            axes.text(0.5, 0.5, "no face found", transform=axes.transAxes, ha="center", va="center")
    if panels:
        axes.set_xlabel("time (s)")
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)


def _valence_arousal_plane(figure: Figure, axes, values: np.ndarray, times: np.ndarray) -> None:
    points = axes.scatter(values[:, 0], values[:, 1], c=times, s=6, cmap="viridis")
    axes.add_patch(Circle((0, 0), 1, fill=False, color="grey", linewidth=0.5))
    axes.axhline(0, color="grey", linewidth=0.5)
    axes.axvline(0, color="grey", linewidth=0.5)
    axes.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xlabel="valence", ylabel="arousal", aspect="equal")
    figure.colorbar(points, ax=axes, label="time (s)", shrink=0.8)


def _shade_missing_faces(axes, times: np.ndarray, face_detected: np.ndarray) -> None:
    """Grey spans over the frames without a detected face, each from its time to the next frame's."""
    missing = np.r_[0, face_detected == 0, 0].astype(np.int8)
    starts, stops = np.flatnonzero(np.diff(missing) == 1), np.flatnonzero(np.diff(missing) == -1)
    step = np.median(np.diff(times)) if len(times) > 1 else 1.0
    ends = np.r_[times[1:], times[-1] + step] if len(times) else times
    for start, stop in zip(starts, stops):
        axes.axvspan(times[start], ends[stop - 1], color="grey", alpha=0.2, linewidth=0)
