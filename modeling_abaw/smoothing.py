"""Temporal post-processing of per-frame predictions (paper Sec. 3.2 and 4.4).

Per video, frames where no face was detected first take the prediction of the nearest frame with a face; then each
task's predictions are smoothed along time. Videos are processed one at a time, so smoothing never crosses a video
boundary.

What to do is a smoothing policy: a plain JSON-serialisable dict that model configs store, so that inference
reproduces the post-processing chosen at training time, e.g.

    {"au": {"filter": "gaussian", "sigma": 5.0},
     "expr": {"filter": "median", "window": 25},
     "va": {"filter": "none"}}

A task's entry is one filter spec (a dict) or a chain of them (a list), applied in order, e.g.
`{"au": [{"filter": "median", "window": 5}, {"filter": "gaussian", "sigma": 2.0}]}`: the paper's final submission
"combines some of the mentioned smooth policies", and `modeling_abaw.smoothing_search` chooses such chains on
validation.

The filters, all from scipy.ndimage and along the time axis only:

    gaussian  gaussian_filter1d(sigma)
    median    median_filter(window)
    average   uniform_filter1d(window)
    none      predictions unchanged

They use boundary mode "nearest" (`BOUNDARY_MODE`): the first and last predictions are repeated past the ends of the
video, so its first and last frames are not pulled towards 0 as zero padding would pull them. AU and EXPR are
smoothed as probabilities and VA as values; after each filter (each step of a chain), each EXPR frame is renormalised
to sum to 1 (the median filter works per class, so its rows need not), and VA is clipped to [-1, 1].
"""

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d, median_filter, uniform_filter1d

from .tasks import SMOOTHING_FILTERS, TASK_NAMES, TASKS, AffectTask, get_task

BOUNDARY_MODE = "nearest"


def _validate_filter_spec(task: AffectTask, spec, where: str) -> dict:
    """One filter spec with its parameter explicit (a missing one is the paper's, from tasks.py)."""
    if not isinstance(spec, Mapping) or "filter" not in spec:
        raise ValueError(f"{where} must be a dict with a 'filter' key, got {spec!r}.")
    kind = spec["filter"]
    if not isinstance(kind, str) or kind not in SMOOTHING_FILTERS:
        raise ValueError(f"{where}['filter'] is {kind!r}; choose from {', '.join(SMOOTHING_FILTERS)}.")
    parameter = SMOOTHING_FILTERS[kind]
    unexpected = sorted(set(spec) - {"filter", parameter}, key=str)
    if unexpected:
        takes = parameter or "no parameter"
        raise ValueError(f"{where} has unexpected key(s) {unexpected}; filter {kind!r} takes {takes}.")
    if parameter is None:
        return {"filter": kind}
    if parameter == "sigma":
        sigma = spec.get("sigma", task.smoothing_sigma)
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"{where}['sigma'] must be a positive number of frames, got {sigma!r}.")
        return {"filter": kind, "sigma": float(sigma)}
    window = spec.get("window", task.smoothing_window)
    if isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < 1:
        raise ValueError(f"{where}['window'] must be a positive whole number of frames, got {window!r}.")
    return {"filter": kind, "window": int(window)}


def _validate_task_policy(task: AffectTask, entry) -> dict | list[dict]:
    """A task's entry, validated in its own form: a spec dict stays a dict, a chain (list) stays a list."""
    where = f"Smoothing policy[{task.name!r}]"
    if not isinstance(entry, list):
        return _validate_filter_spec(task, entry, where)
    if not entry:
        raise ValueError(f"{where} is an empty chain; give at least one filter spec (or {{'filter': 'none'}}).")
    return [_validate_filter_spec(task, spec, f"{where}[{step}]") for step, spec in enumerate(entry)]


def filter_steps(entry: Mapping | Sequence) -> list[dict]:
    """The filter specs of a validated task entry, in the order they apply: [spec] for a single spec."""
    return list(entry) if isinstance(entry, list) else [entry]


def validate_smoothing_policy(policy: Mapping) -> dict:
    """Return `policy` with every parameter explicit, or raise a ValueError naming the bad key or value.

    A missing sigma or window takes the paper's value for that task from tasks.py, so `{"expr": {"filter": "median"}}`
    is the paper's 25-frame median filter. A task's entry keeps its form: a spec dict, or a chain (a non-empty list of
    spec dicts; errors name the bad step, e.g. `policy['au'][1]`). The result is in task registry order and holds
    only JSON types.
    """
    if not isinstance(policy, Mapping):
        raise ValueError(f"A smoothing policy must be a dict of task -> filter settings, got {type(policy).__name__}.")
    for name in policy:
        if name not in TASKS:
            raise ValueError(f"Smoothing policy: unknown task {name!r}; the ABAW tasks are {', '.join(TASK_NAMES)}.")
    return {name: _validate_task_policy(TASKS[name], policy[name]) for name in TASK_NAMES if name in policy}


def fill_missing_frames(values, has_face) -> np.ndarray:
    """Give each frame without a face the values of the nearest frame with one.

    A frame halfway between two face frames takes the earlier one, the value a streaming predictor would already
    have. Returns a new (T, ...) array; a video without any face is returned unchanged (as a copy), since there is
    nothing to copy from; callers that care can check `has_face.any()`.
    """
    values, has_face = np.asarray(values), np.asarray(has_face, dtype=bool)
    if has_face.shape != values.shape[:1]:
        raise ValueError(f"has_face must have shape ({len(values)},) like the frames, got {has_face.shape}.")
    face_frames = np.flatnonzero(has_face)
    if face_frames.size == 0:
        return values.copy()
    frames = np.arange(len(has_face))
    following = np.searchsorted(face_frames, frames)  # index of the first face frame at or after each frame
    before = face_frames[np.maximum(following - 1, 0)]
    after = face_frames[np.minimum(following, face_frames.size - 1)]
    return values[np.where(frames - before <= after - frames, before, after)]


def _as_float_array(values) -> np.ndarray:
    """`values` as an array, keeping a floating dtype (float32 stays float32) and turning integers into float64."""
    values = np.asarray(values)
    return values if np.issubdtype(values.dtype, np.floating) else values.astype(np.float64)


def _policy_for(policy: dict, task: str) -> dict:
    if task not in policy:
        raise ValueError(f"The smoothing policy has no entry for task {task!r} (it covers {sorted(policy)}).")
    return policy[task]


def _apply_filter(values: np.ndarray, task: AffectTask, spec: dict) -> np.ndarray:
    """One filter step along time, then the task's invariants: EXPR rows sum to 1, VA stays in its range."""
    kind = spec["filter"]
    if kind == "none":
        return values.copy()
    if kind == "gaussian":
        smoothed = gaussian_filter1d(values, spec["sigma"], axis=0, mode=BOUNDARY_MODE)
    elif kind == "median":
        # Column by column: scipy's 1-d median filter gives the same values as a (window, 1) filter over the
        # array, over ten times faster (the smoothing search runs hundreds of them over a validation set).
        columns = [median_filter(column, size=spec["window"], mode=BOUNDARY_MODE) for column in values.T]
        smoothed = np.stack(columns, axis=1)
    else:
        smoothed = uniform_filter1d(values, spec["window"], axis=0, mode=BOUNDARY_MODE)
    if task.is_multiclass:
        # A frame whose smoothed probabilities are all 0 (possible with the median filter) keeps its own.
        totals = smoothed.sum(axis=1, keepdims=True)
        return np.divide(smoothed, totals, out=values.copy(), where=totals > 0)
    if task.is_regression:
        return np.clip(smoothed, *task.prediction_range)
    return smoothed


def _smooth(values, task: AffectTask, entry: dict | list[dict]) -> np.ndarray:
    """Smooth one video's (T, C) predictions along time with a validated task entry (a spec or a chain)."""
    values = _as_float_array(values)
    if values.ndim != 2 or values.shape[1] != task.num_outputs:
        raise ValueError(f"{task.name} predictions must have shape (frames, {task.num_outputs}), got {values.shape}.")
    if not task.is_regression and values.size and (values.min() < 0 or values.max() > 1):
        raise ValueError(f"{task.name} predictions must be probabilities in [0, 1]; apply sigmoid/softmax to logits.")
    for spec in filter_steps(entry):
        values = _apply_filter(values, task, spec)
    return values


def smooth_task(values, task: str, policy: Mapping) -> np.ndarray:
    """Smooth one video's (T, C) predictions of `task` along time as `policy[task]` says; returns a new array."""
    return _smooth(values, get_task(task), _policy_for(validate_smoothing_policy(policy), task))


def _postprocess(predictions: Mapping, has_face, policy: dict) -> dict[str, np.ndarray]:
    return {
        name: _smooth(
            values if has_face is None else fill_missing_frames(values, has_face),
            get_task(name),
            _policy_for(policy, name),
        )
        for name, values in predictions.items()
    }


def postprocess_video(predictions: Mapping, has_face, policy: Mapping) -> dict[str, np.ndarray]:
    """Fill frames without a face, then smooth, for one video.

    Args:
        predictions: task -> (T, C) per-frame predictions: AU and EXPR probabilities, VA values.
        has_face: (T,) bool, False where no face was detected; None when every frame has one.
        policy: a smoothing policy (module docstring) with an entry for every task in `predictions`.
    """
    return _postprocess(predictions, has_face, validate_smoothing_policy(policy))


def postprocess_by_video(predictions: Mapping, video_ids, has_face, policy: Mapping) -> dict[str, np.ndarray]:
    """`postprocess_video` on the frames of many videos concatenated, e.g. a whole evaluation set.

    Frames sharing a video id form one video, in their order in the arrays (they need not be contiguous), and are
    processed apart from every other video. The outputs keep the input order.

    Args:
        predictions: task -> (N, C) predictions of all frames.
        video_ids: (N,) the video of each frame (any comparable values, e.g. names).
        has_face: (N,) bool, or None when every frame has a face.
        policy: a smoothing policy with an entry for every task in `predictions`.
    """
    policy = validate_smoothing_policy(policy)
    video_ids = np.asarray(video_ids)
    if video_ids.ndim != 1:
        raise ValueError(f"video_ids must be one id per frame, shape (N,), got {video_ids.shape}.")
    predictions = {name: _as_float_array(values) for name, values in predictions.items()}
    for what, array in [("has_face", has_face), *predictions.items()]:
        if array is not None and len(array) != len(video_ids):
            raise ValueError(f"{what} has {len(array)} frames but video_ids has {len(video_ids)}.")
    has_face = None if has_face is None else np.asarray(has_face, dtype=bool)
    _, video_index, frame_counts = np.unique(video_ids, return_inverse=True, return_counts=True)
    outputs = {name: np.empty_like(values) for name, values in predictions.items()}
    # A stable sort keeps each video's frames in their original order.
    for frames in np.split(np.argsort(video_index, kind="stable"), np.cumsum(frame_counts)[:-1]):
        video = _postprocess(
            {name: values[frames] for name, values in predictions.items()},
            None if has_face is None else has_face[frames],
            policy,
        )
        for name, values in video.items():
            outputs[name][frames] = values
    return outputs
