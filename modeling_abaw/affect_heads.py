"""Per-frame affect heads and their output, shared by FaceMAEForAffect and TMFForAffect.

One linear head per task: 12 AU logits, 8 expression logits, 2 valence/arousal values bounded to [-1, 1] by tanh.
The class weights of the losses come from the model config (inverse class frequency of the training split).
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import ModelOutput

from .losses import au_loss, expr_loss, va_loss
from .tasks import AU, EXPR, TASKS, VA


@dataclass
class AffectOutput(ModelOutput):
    """Outputs of the affect models, per frame.

    Args:
        loss: sum of the task losses (Eq. 1-3) over the tasks whose labels were given.
        au_loss, expr_loss, va_loss: each task's loss, for logging.
        au_logits: (..., 12) AU logits; `sigmoid` gives the AU probabilities.
        expr_logits: (..., 8) expression logits; `softmax` gives the class probabilities.
        va: (..., 2) valence and arousal in [-1, 1].
        features: (..., hidden_size) the per-frame feature the heads read (for FaceMAEForAffect: the pooled visual
            feature that TMF consumes).
        hidden_states, attentions: the backbone's, when asked for.
    """

    loss: torch.FloatTensor | None = None
    au_loss: torch.FloatTensor | None = None
    expr_loss: torch.FloatTensor | None = None
    va_loss: torch.FloatTensor | None = None
    au_logits: torch.FloatTensor | None = None
    expr_logits: torch.FloatTensor | None = None
    va: torch.FloatTensor | None = None
    features: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class AffectHeads(nn.Module):
    """Linear heads for the configured tasks (`config.tasks`) and the paper's losses."""

    def __init__(self, config, in_features: int):
        super().__init__()
        self.config = config
        self.heads = nn.ModuleDict({name: nn.Linear(in_features, TASKS[name].num_outputs) for name in config.tasks})

    def forward(
        self,
        features: torch.Tensor,
        au_labels: torch.Tensor | None = None,
        expr_labels: torch.Tensor | None = None,
        va_labels: torch.Tensor | None = None,
        valid_mask: torch.Tensor | None = None,
    ) -> AffectOutput:
        """`valid_mask` (same leading shape as `features`, 1 = real frame) marks padding whose labels are ignored."""
        outputs = {"features": features}
        if AU.name in self.heads:
            outputs["au_logits"] = self.heads[AU.name](features)
        if EXPR.name in self.heads:
            outputs["expr_logits"] = self.heads[EXPR.name](features)
        if VA.name in self.heads:
            outputs["va"] = torch.tanh(self.heads[VA.name](features))

        if valid_mask is not None:
            au_labels, expr_labels, va_labels = (
                _mark_padding_invalid(labels, valid_mask, task.invalid_value)
                for labels, task in ((au_labels, AU), (expr_labels, EXPR), (va_labels, VA))
            )
        # The loss weights live in the config (JSON), read at each call so that a changed config takes effect.
        losses = {}
        if au_labels is not None and "au_logits" in outputs:
            pos_weight = torch.tensor(self.config.au_pos_weight, device=features.device)
            losses["au_loss"] = au_loss(outputs["au_logits"], au_labels, pos_weight)
        if expr_labels is not None and "expr_logits" in outputs:
            class_weight = torch.tensor(self.config.expr_class_weight, device=features.device)
            losses["expr_loss"] = expr_loss(outputs["expr_logits"], expr_labels, class_weight)
        if va_labels is not None and "va" in outputs:
            losses["va_loss"] = va_loss(outputs["va"], va_labels)
        if losses:
            outputs.update(losses, loss=sum(losses.values()))
        return AffectOutput(**outputs)


def _mark_padding_invalid(labels, valid_mask, invalid_value):
    if labels is None:
        return None
    mask = valid_mask.bool().reshape(valid_mask.shape + (1,) * (labels.dim() - valid_mask.dim()))
    return torch.where(mask, labels, torch.full_like(labels, invalid_value))
