"""Training splits and class weights: the paper's video-level k-fold cross-validation and the loss weights that
rebalance rare action units and expressions (paper Sec. 3.1, Eq. 1-2)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..tasks import AU, EXPR, AffectTask
from .affwild2 import check_labels, raw_video_name

if TYPE_CHECKING:
    import datasets


def kfold_video_splits(videos: Iterable[str], k: int = 5, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """Random video-level k-fold split (the paper's 5-fold cross-validation): `k` (train_videos, val_videos) pairs.

    Each video is in exactly one validation fold. The `_left`/`_right` halves of a two-person video share one raw
    video, so they always fall in the same fold; otherwise the same person would be in training and validation.
    """
    videos = sorted(set(videos))
    groups = sorted({raw_video_name(video) for video in videos})
    if not 2 <= k <= len(groups):
        raise InputError(f"k-fold needs 2 <= k <= {len(groups)} (the number of raw videos), got k={k}")
    fold_of = {}
    for fold, members in enumerate(np.array_split(np.random.default_rng(seed).permutation(len(groups)), k)):
        fold_of.update((groups[member], fold) for member in members)
    return [
        (
            [video for video in videos if fold_of[raw_video_name(video)] != fold],
            [video for video in videos if fold_of[raw_video_name(video)] == fold],
        )
        for fold in range(k)
    ]


def inverse_frequency_weights(counts: np.ndarray) -> np.ndarray:
    """Loss weights inversely proportional to class frequency, the paper's rule (Sec. 3.1) as the authors compute it:
    W_c = N_max / N_c, so the most frequent class weighs 1 and a class ten times rarer 10.

    A class with no example (N_c = 0) gets 0 rather than an infinite weight. For an expression this changes nothing
    (the class is never a target); for an AU it leaves the AU out of Eq. 1's sum (no positive frame to learn it from),
    so its head is not trained.
    """
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.zeros(counts.shape, dtype=np.float32)
    present = counts > 0
    weights[present] = counts.max() / counts[present]
    return weights


def au_class_weights(labels: np.ndarray | datasets.Dataset) -> np.ndarray:
    """Eq. 1's per-AU weights W_j = N_max / N_j (`inverse_frequency_weights`), N_j the frames where AU j is labelled
    present; the model config's `au_class_weight`, the `weight` of `binary_cross_entropy_with_logits`. Unlabelled (-1)
    elements count for nothing.

    `labels` is an AU label array of shape (..., 12) (frames, or clips of frames) or a frame table
    (`AffWild2.frame_table`), whose `au_labels` column is read.
    """
    labels = _training_labels(labels, AU, "au_class_weights")
    return inverse_frequency_weights((labels == 1).sum(0))


def au_pos_weights(labels: np.ndarray | datasets.Dataset) -> np.ndarray:
    """An option beyond the paper: per-AU weights of the positive term of the BCE, pos_weight_j = negatives_j /
    positives_j over the frames where AU j is labelled (the `pos_weight` of `binary_cross_entropy_with_logits`, the
    model config's `au_pos_weight`), so that positives and negatives of every AU weigh the same in total. This moves
    each AU's best constant prediction to 0.5, whatever its frequency. An AU with no positive (or no negative) frame
    gets 1: there is nothing to rebalance.

    `labels` is an AU label array of shape (..., 12) (frames, or clips of frames) or a frame table
    (`AffWild2.frame_table`), whose `au_labels` column is read.
    """
    labels = _training_labels(labels, AU, "au_pos_weights")
    positives, negatives = (labels == 1).sum(0), (labels == 0).sum(0)
    weights = np.ones(AU.num_outputs, dtype=np.float32)
    both = (positives > 0) & (negatives > 0)
    weights[both] = negatives[both] / positives[both]
    return weights


def expr_class_weights(labels: np.ndarray | datasets.Dataset) -> np.ndarray:
    """Eq. 2's expression class weights W_c = N_max / N_c (`inverse_frequency_weights`), N_c the frames of class c;
    the model config's `expr_class_weight`, the `weight=` of `cross_entropy`. Unlabelled (-1) frames are ignored.

    `labels` is an array of class indices of any shape (frames, or clips of frames) or a frame table
    (`AffWild2.frame_table`), whose `expr_labels` column is read.
    """
    labels = _training_labels(labels, EXPR, "expr_class_weights")
    labels = labels[EXPR.is_labelled(labels)].astype(np.int64)
    return inverse_frequency_weights(np.bincount(labels, minlength=EXPR.num_outputs))


def _training_labels(labels: np.ndarray | datasets.Dataset, task: AffectTask, function: str) -> np.ndarray:
    """The labels of `task` as a (frames, ...) array of the task's label shape, from a label array or from a frame
    table's `label_key` column, checked like annotation values (the "no label" marker allowed)."""
    if hasattr(labels, "column_names"):  # a frame table (datasets.Dataset)
        if task.label_key not in labels.column_names:
            raise InputError(
                f"{function}: the frame table has no {task.label_key} column; build it with the task {task.name!r}"
            )
        labels = labels.with_format("numpy")[task.label_key][:]
    per_frame = task.label_shape(0)[1:]  # () for class indices, (12,) for AUs
    try:
        values = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim < 1 + len(per_frame) or values.shape[values.ndim - len(per_frame) :] != per_frame:
        expected = f"(..., {per_frame[0]})" if per_frame else "(...)"
        found = f"shape {values.shape}" if values is not None else type(labels).__name__
        raise InputError(
            f"{function}: expected {task.name} labels as an array of shape {expected} or a frame table "
            f"(AffWild2.frame_table), got {found}"
        )
    values = values.reshape(task.label_shape(-1))
    check_labels(values.reshape(len(values), task.num_value_columns), task.name, f"{function} labels", 1, unit="row")
    return values
