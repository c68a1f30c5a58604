"""What the affect stages (finetune, tmf) take from the Aff-Wild2 labels: the training and validation frames of the
run's tasks without a split leak, the loss weights the training labels give the model config, and the label
arguments of a batch."""

from collections.abc import Mapping, Sequence

import datasets
import numpy as np
import torch

from ..data import AffWild2, splits
from ..errors import InputError
from ..tasks import TASKS
from . import OFFICIAL_SPLIT
from .arguments import AffectArguments


def training_and_validation_frames(
    data: AffWild2, tasks: Sequence[str], fold: int | None = None, num_folds: int = 5, fold_seed: int = 0
) -> tuple[datasets.Dataset, datasets.Dataset, str]:
    """The frame tables of the training and validation videos of `tasks`, and a line saying which split it is or
    what split hygiene dropped ("" for the official split of a single task).

    `fold` None is the released split. Fold i (1-based) of `num_folds` validates on the i-th of the video-level
    folds (`kfold_video_splits`, seeded by `fold_seed`) of the labelled train + validation videos of `tasks`, and
    trains on the others: a video is in exactly one fold, so no split hygiene is needed.

    Aff-Wild2's challenges have different video lists: a video of one task's Train_Set may be in another's
    Validation_Set. The paper trains one model per track, where this cannot happen; a multi-task run on the official
    split validates on the union of the tasks' Validation_Sets, so a video in any of them gives no frame to training
    (otherwise the validation score of one task would be measured on a face the model was trained on for another).
    """
    if fold is not None:
        both = ["train", "validation"]
        try:
            folds = splits.kfold_video_splits(data.videos(both, tasks), num_folds, fold_seed)
        except InputError as error:
            raise InputError(f"--num_folds {num_folds}: {error}") from None
        train_videos, eval_videos = folds[fold - 1]
        note = (
            f"Fold {fold} of {num_folds} (seed {fold_seed}): {len(train_videos)} training, {len(eval_videos)} "
            "validation videos"
        )
        return (
            data.frame_table(both, tasks, videos=train_videos),
            data.frame_table(both, tasks, videos=eval_videos),
            note,
        )
    candidates = data.videos("train", tasks)
    leaking = set(candidates) & set(data.videos("validation", tasks))
    train_frames = data.frame_table("train", tasks)
    eval_frames = data.frame_table("validation", tasks)
    if len(tasks) == 1:
        return train_frames, eval_frames, ""
    # One table of the candidates, from which the leaking videos' rows are left out (their annotations read once).
    leaked = np.isin(train_frames.with_format("numpy")["video"][:], sorted(leaking))
    train_frames, dropped_frames = train_frames.select(np.flatnonzero(~leaked)), int(leaked.sum())
    note = (
        f"Split hygiene of the multi-task run ({', '.join(tasks)}): {len(leaking)} of {len(candidates)} training "
        f"video(s) ({dropped_frames} frames) left out of training, being in the validation set of one of these tasks"
    )
    return train_frames, eval_frames, note


def run_info(args: AffectArguments, eval_frames: datasets.Dataset) -> dict:
    """What an affect run's history.json records of its data: the tasks and the split (`abaw fold-table` reads it)."""
    return {
        "tasks": args.task_list,
        "split": {
            "fold": args.fold_number or OFFICIAL_SPLIT,
            "num_folds": args.num_folds,
            "fold_seed": args.fold_seed,
            "validation_videos": sorted(set(eval_frames["video"])),
        },
    }


def loss_weights(frames: datasets.Dataset, tasks: Sequence[str], au_positive_weighting: bool = False) -> dict:
    """The model config's loss weights from the labels of the training frames (paper Sec. 3.1), each inversely
    proportional to a class's frequency:

    - AU, Eq. 1: `au_class_weight` W_j = N_max / N_j (N_j: positive frames of AU j), weighting both terms of AU j's
      binary cross-entropy; `au_pos_weight` ones. With `au_positive_weighting` instead (the package's earlier
      default): `au_pos_weight` = negatives / positives on the positive term and `au_class_weight` ones.
    - EXPR, Eq. 2: `expr_class_weight` W_c = N_max / N_c.

    Both fields of AU are set, so that a run continuing from a checkpoint takes every weight from its own training
    split. The weights are computed with numpy, which tasks.py cannot import: hence the one dispatch by task kind
    here; the regression loss (CCC) takes no weights.
    """
    columns = frames.with_format("numpy")
    weights = {}
    for name in tasks:
        task = TASKS[name]
        if task.is_regression:
            continue
        labels = columns[task.label_key][:]
        if task.is_multiclass:
            weights[task.class_weight_key] = splits.expr_class_weights(labels).tolist()
            continue
        ones = [1.0] * task.num_outputs
        class_weight, pos_weight = (
            (ones, splits.au_pos_weights(labels).tolist())
            if au_positive_weighting
            else (splits.au_class_weights(labels).tolist(), ones)
        )
        weights.update({task.class_weight_key: class_weight, task.positive_weight_key: pos_weight})
    return weights


def label_inputs(batch: Mapping, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
    """The model's label arguments (`au_labels`, ...) for `tasks`, from a batch."""
    return {TASKS[name].label_key: batch[TASKS[name].label_key] for name in tasks}
