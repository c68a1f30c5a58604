"""The paper's training losses (Sec. 3.1, Eq. 1-3), shared by every affect model of the package.

One loss per task kind, chosen by `task_loss`: class-weighted binary cross-entropy for multilabel tasks (AU, Eq. 1),
class-weighted cross-entropy for multiclass tasks (EXPR, Eq. 2), 1 - CCC per dimension for regression (VA, Eq. 3).
Each ignores the task's "no label" marker per element (`AffectTask.is_labelled`), so a batch where only some frames
(or some AUs) are labelled still trains. A batch with no valid label for a task gives a zero loss that stays
connected to the graph, so every process of a distributed run reaches the same backward.
"""

import torch
import torch.nn.functional as F

from .tasks import AffectTask


def _zero_like(prediction: torch.Tensor) -> torch.Tensor:
    return prediction.sum() * 0.0


def multilabel_loss(
    task: AffectTask,
    logits: torch.Tensor,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 1: the mean over the labelled (frame, output) elements of W_j * BCE_j, where `class_weight` W_j weighs both
    terms of output j's binary cross-entropy (the `weight` of the authors' `BCEWithLogitsLoss(weight=W)`).
    `pos_weight` (optional, not in the paper) further weighs the positive term only. `logits` and `labels` are
    (..., num_outputs)."""
    labelled = task.is_labelled(labels)
    if not labelled.any():
        return _zero_like(logits)
    per_element = F.binary_cross_entropy_with_logits(
        logits.float(), labels.float().clamp(min=0), weight=class_weight, pos_weight=pos_weight, reduction="none"
    )
    return per_element[labelled].mean()


def multiclass_loss(
    task: AffectTask, logits: torch.Tensor, labels: torch.Tensor, class_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 2: class-weighted cross-entropy (torch's weighted mean over the labelled frames). `logits` are
    (..., num_classes), `labels` (...) class indices."""
    logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).long()
    if not task.is_labelled(labels).any():
        return _zero_like(logits)
    return F.cross_entropy(logits.float(), labels, weight=class_weight, ignore_index=int(task.invalid_value))


def concordance_correlation_coefficient(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CCC = 2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2), population moments, differentiable."""
    prediction, target = prediction.float(), target.float()
    prediction_mean, target_mean = prediction.mean(), target.mean()
    covariance = ((prediction - prediction_mean) * (target - target_mean)).mean()
    denominator = prediction.var(unbiased=False) + target.var(unbiased=False) + (prediction_mean - target_mean) ** 2
    # Guards the degenerate batch where both series are one identical constant (0 / 0).
    return 2 * covariance / denominator.clamp(min=torch.finfo(torch.float32).eps)


def regression_loss(task: AffectTask, prediction: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 3: the sum over dimensions (valence, arousal) of 1 - CCC, each over its labelled frames. Inputs are
    (..., num_outputs)."""
    prediction, labels = prediction.reshape(-1, task.num_outputs), labels.reshape(-1, task.num_outputs)
    labelled = task.is_labelled(labels)
    loss = _zero_like(prediction)
    for dim in range(task.num_outputs):
        # CCC needs at least two frames to have a variance.
        if labelled[:, dim].sum() >= 2:
            valid = labelled[:, dim]
            loss = loss + 1 - concordance_correlation_coefficient(prediction[valid, dim], labels[valid, dim])
    return loss


def task_loss(
    task: AffectTask,
    output: torch.Tensor,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The loss of `task` for its model output and labels. `class_weight` is the task's per-output weights (the config
    field `task.class_weight_key`), `pos_weight` a multilabel task's positive-term weights (`task.positive_weight_key`);
    regression takes neither.

    The one dispatch on the task kind outside the registry: the losses need torch, which tasks.py cannot import.
    """
    if task.is_regression:
        return regression_loss(task, output, labels)
    if task.is_multiclass:
        return multiclass_loss(task, output, labels, class_weight)
    return multilabel_loss(task, output, labels, class_weight, pos_weight)
