"""The labels of the affect stages (finetune, tmf): the loss weights the training split's labels give the model
config, and the label arguments of a batch."""

from collections.abc import Mapping, Sequence

import datasets
import torch

from ..data import au_pos_weights, expr_class_weights
from ..tasks import TASKS

# The loss weights of each task kind: the config field's suffix (`au_pos_weight`, `expr_class_weight`) and how they
# follow from the training labels. One dispatch by kind, as the weights are computed with numpy, which tasks.py
# cannot import; the regression loss (CCC) takes no weights.
LOSS_WEIGHTS = {"multilabel": ("pos_weight", au_pos_weights), "multiclass": ("class_weight", expr_class_weights)}


def loss_weights(frames: datasets.Dataset, tasks: Sequence[str]) -> dict[str, list[float]]:
    """The model config's loss weights (`au_pos_weight`, `expr_class_weight`) from the labels of the training
    frames, inversely proportional to the frequencies (paper Sec. 3.1)."""
    columns = frames.with_format("numpy")
    weights = {}
    for name in tasks:
        task = TASKS[name]
        if task.kind in LOSS_WEIGHTS:
            suffix, weights_of = LOSS_WEIGHTS[task.kind]
            weights[f"{name}_{suffix}"] = weights_of(columns[task.label_key][:]).tolist()
    return weights


def label_inputs(batch: Mapping, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
    """The model's label arguments (`au_labels`, ...) for `tasks`, from a batch."""
    return {TASKS[name].label_key: batch[TASKS[name].label_key] for name in tasks}
