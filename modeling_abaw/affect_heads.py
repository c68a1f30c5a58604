"""Per-frame affect heads and their output, shared by FaceMAEForAffect and TMFForAffect.

One linear head per configured task (12 AU logits, 8 expression logits, 2 valence/arousal values), each followed by
its task's activation and trained with its task's loss (tasks.py, losses.py). The loss weights come from the model
config (inverse class frequency of the training split, N_max / N_c; AU's optional positive weights beside them).

Valence and arousal are bounded by tanh: this differs from the authors' code, which clamps a linear output to
[-1, 1], because tanh has a gradient everywhere (a clamped output outside [-1, 1] gets none).
"""

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import ModelOutput

from .losses import task_loss
from .tasks import TASKS


@dataclass
class AffectOutput(ModelOutput):
    """Outputs of the affect models, per frame.

    Args:
        loss: sum of the task losses (Eq. 1-3) over the tasks whose labels were given.
        au_loss, expr_loss, va_loss: each task's loss, for logging.
        au_logits: (..., 12) AU logits; `sigmoid` gives the AU probabilities.
        expr_logits: (..., 8) expression logits; `softmax` gives the class probabilities.
        va: (..., 2) valence and arousal in [-1, 1], the tanh of the head's output (the authors clamp a linear
            output instead; tanh has a gradient everywhere).
        features: (..., hidden_size) the per-frame feature the heads read (for FaceMAEForAffect: the pooled visual
            feature that TMF consumes).
        hidden_states: with `output_hidden_states=True`, the input of the encoder's first layer and the output of
            every layer, `num_hidden_layers + 1` tensors of shape (batch, tokens or frames, hidden_size).
        attentions: with `output_attentions=True`, the attention probabilities of every encoder layer,
            `num_hidden_layers` tensors of shape (batch, num_attention_heads, tokens or frames, tokens or frames).
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
        labels: Mapping[str, torch.Tensor | None] | None = None,
        valid_mask: torch.Tensor | None = None,
    ) -> AffectOutput:
        """Per-task outputs of `features` (..., in_features), and the losses of the tasks whose labels are given.

        `labels` maps label keys (`au_labels`, `expr_labels`, `va_labels`) to labels with the official "no label"
        markers; `valid_mask` (same leading shape as `features`, 1 = real frame) marks padding whose labels are
        ignored.
        """
        labels = labels or {}
        outputs = {"features": features}
        losses = {}
        for name, head in self.heads.items():
            task = TASKS[name]
            output = outputs[task.output_key] = task.head_activation(head(features))
            task_labels = labels.get(task.label_key)
            if task_labels is None:
                continue
            if valid_mask is not None:
                task_labels = _mark_padding_unlabelled(task_labels, valid_mask, task.invalid_value)
            # The loss weights live in the config (JSON), read at each call so that a changed config takes effect.
            losses[task.loss_key] = task_loss(
                task,
                output,
                task_labels,
                class_weight=self._config_weights(task.class_weight_key, features.device),
                pos_weight=self._config_weights(task.positive_weight_key, features.device),
            )
        if losses:
            outputs.update(losses, loss=sum(losses.values()))
        return AffectOutput(**outputs)

    def _config_weights(self, key: str | None, device: torch.device) -> torch.Tensor | None:
        return None if key is None else torch.tensor(getattr(self.config, key), device=device)


def _mark_padding_unlabelled(labels, valid_mask, invalid_value):
    mask = valid_mask.bool().reshape(valid_mask.shape + (1,) * (labels.dim() - valid_mask.dim()))
    return torch.where(mask, labels, torch.full_like(labels, invalid_value))
