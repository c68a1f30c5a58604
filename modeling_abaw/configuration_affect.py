"""Configuration fields shared by every affect model (FaceMAEForAffect, TMFForAffect): tasks, labels, loss weights,
post-processing. A flat module so Hub remote code can import it beside the configuration files."""

from dataclasses import dataclass

from .tasks import AU, EXPR, TASKS, default_smoothing_policy, validate_tasks


@dataclass(kw_only=True)
class AffectConfigMixin:
    r"""
    tasks (`list[str]`, defaults to `["au", "expr", "va"]`):
        The ABAW tasks the model predicts, any of "au" (12 action units), "expr" (8 expressions) and
        "va" (valence and arousal).
    au_pos_weight (`list[float]`, *optional*):
        Weight of the positive class of each AU in the BCE loss (inverse frequency in the training split).
        Defaults to ones.
    expr_class_weight (`list[float]`, *optional*):
        Weight of each expression class in the cross-entropy loss (inverse frequency). Defaults to ones.
    smoothing_policy (`dict`, *optional*):
        Temporal post-processing per task applied at inference (see `modeling_abaw.smoothing`). Defaults to the
        paper's gaussian filters, for every task (so that changing `tasks` never leaves one without a policy).

    `label_names` (a property) gives the output names of each task, from the task registry.
    """

    tasks: list[str] | None = None
    au_pos_weight: list[float] | None = None
    expr_class_weight: list[float] | None = None
    smoothing_policy: dict | None = None

    def _init_affect_fields(self) -> None:
        self.tasks = validate_tasks(self.tasks if self.tasks is not None else list(TASKS))
        self.au_pos_weight = _weights_or_ones(self.au_pos_weight, AU.num_outputs, "au_pos_weight")
        self.expr_class_weight = _weights_or_ones(self.expr_class_weight, EXPR.num_outputs, "expr_class_weight")
        self.smoothing_policy = {**default_smoothing_policy(), **(self.smoothing_policy or {})}

    @property
    def label_names(self) -> dict[str, list[str]]:
        """Output names of each task of the model, in output order."""
        return {name: list(TASKS[name].labels) for name in self.tasks}


def _weights_or_ones(weights, size: int, name: str) -> list[float]:
    if weights is None:
        return [1.0] * size
    weights = [float(weight) for weight in weights]
    if len(weights) != size or any(weight < 0 for weight in weights):
        raise ValueError(f"{name} needs {size} non-negative values, got {weights}")
    return weights
