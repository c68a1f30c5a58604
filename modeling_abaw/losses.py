"""The paper's training losses (Sec. 3.1, Eq. 1-3), shared by every affect model of the package.

Each loss ignores the official "no label" marker per element (AU -1 per AU, EXPR -1, VA -5 per dimension), so a
batch where only some frames (or some AUs) are labelled still trains. A batch with no valid label for a task gives a
zero loss that stays connected to the graph, so every process of a distributed run reaches the same backward.
"""

import torch
import torch.nn.functional as F

from .tasks import AU, EXPR, VA


def _zero_like(prediction: torch.Tensor) -> torch.Tensor:
    return prediction.sum() * 0.0


def au_loss(logits: torch.Tensor, labels: torch.Tensor, pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 1: binary cross-entropy over the 12 AUs, positives weighted per AU (`pos_weight`, inverse frequency).

    Averaged over the valid (AU, frame) elements. `logits` and `labels` are (..., 12).
    """
    valid = labels != AU.invalid_value
    if not valid.any():
        return _zero_like(logits)
    per_element = F.binary_cross_entropy_with_logits(
        logits.float(), labels.float().clamp(min=0), pos_weight=pos_weight, reduction="none"
    )
    return per_element[valid].mean()


def expr_loss(logits: torch.Tensor, labels: torch.Tensor, class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 2: class-weighted cross-entropy over the 8 expressions (torch's weighted mean over valid frames)."""
    logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).long()
    if not (labels != EXPR.invalid_value).any():
        return _zero_like(logits)
    return F.cross_entropy(logits.float(), labels, weight=class_weight, ignore_index=int(EXPR.invalid_value))


def concordance_correlation_coefficient(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CCC = 2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2), population moments, differentiable."""
    prediction, target = prediction.float(), target.float()
    prediction_mean, target_mean = prediction.mean(), target.mean()
    covariance = ((prediction - prediction_mean) * (target - target_mean)).mean()
    denominator = prediction.var(unbiased=False) + target.var(unbiased=False) + (prediction_mean - target_mean) ** 2
    # Guards the degenerate batch where both series are one identical constant (0 / 0).
    return 2 * covariance / denominator.clamp(min=torch.finfo(torch.float32).eps)


def va_loss(prediction: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 3: (1 - CCC(valence)) + (1 - CCC(arousal)), each over its valid frames. Inputs are (..., 2)."""
    prediction, labels = prediction.reshape(-1, 2), labels.reshape(-1, 2)
    loss = _zero_like(prediction)
    for dim in range(2):
        valid = labels[:, dim] != VA.invalid_value
        # CCC needs at least two frames to have a variance.
        if valid.sum() >= 2:
            loss = loss + 1 - concordance_correlation_coefficient(prediction[valid, dim], labels[valid, dim])
    return loss
