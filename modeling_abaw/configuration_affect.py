"""Configuration fields shared by every affect model (FaceMAEForAffect, TMFForAffect): tasks, labels, loss weights,
post-processing. A flat module so Hub remote code can import it beside the configuration files."""

from dataclasses import dataclass

from .tasks import TASKS, default_smoothing_policy, task_label_names, validate_tasks


@dataclass(kw_only=True)
class AffectConfigMixin:
    r"""
    tasks (`list[str]`, defaults to `["au", "expr", "va"]`):
        The ABAW tasks the model predicts, any of "au" (12 action units), "expr" (8 expressions) and
        "va" (valence and arousal).
    au_class_weight (`list[float]`, *optional*):
        Eq. 1's per-AU weight W_j of both terms of the BCE, inversely proportional to the AU's positive frames in the
        training split (W_j = N_max / N_j, so the most frequent AU weighs 1). Defaults to ones.
    au_pos_weight (`list[float]`, *optional*):
        An option beyond the paper: an extra weight of the positive term of each AU's BCE (the `pos_weight` of
        `binary_cross_entropy_with_logits`), applied on top of `au_class_weight`. Negatives / positives balances every
        AU 50/50, which moves its best operating point away from the challenge's 0.5 threshold. Defaults to ones,
        which leaves Eq. 1 exactly.
    expr_class_weight (`list[float]`, *optional*):
        Eq. 2's weight of each expression class in the cross-entropy, inversely proportional to its frames in the
        training split (W_c = N_max / N_c). Defaults to ones.
    smoothing_policy (`dict`, *optional*):
        Temporal post-processing per task applied at validation and inference (see `modeling_abaw.smoothing`): each
        task's entry is a filter spec (`{"filter": "median", "window": 25}`) or a chain of them applied in order (a
        list); `abaw smoothing-search` stores the policy chosen on validation here. Defaults to the paper's gaussian
        filters, for every task (so that changing `tasks` never leaves one without a policy).

    `id2label` / `label2id` (and so `num_labels`) always follow `tasks`: the output names of the tasks concatenated
    in output order (AU1..AU26, Neutral..Other, valence, arousal), which the Hub widget and `pipeline()` read.
    `label_names` (a property) gives them per task.
    """

    tasks: list[str] | None = None
    au_class_weight: list[float] | None = None
    au_pos_weight: list[float] | None = None
    expr_class_weight: list[float] | None = None
    smoothing_policy: dict | None = None

    def _init_affect_fields(self) -> None:
        self.tasks = validate_tasks(self.tasks if self.tasks is not None else list(TASKS))
        for task in TASKS.values():
            for key in task.loss_weight_keys:
                setattr(self, key, _weights_or_ones(getattr(self, key), task.num_outputs, key))
        self.smoothing_policy = {**default_smoothing_policy(), **(self.smoothing_policy or {})}

    def __setattr__(self, key, value):
        # `tasks` decides the outputs, so setting it (at init, on reload, or later) also sets the label maps.
        # Before `_init_affect_fields` (while the dataclass assigns its defaults) it may still be None.
        if key == "tasks" and value is not None:
            value = validate_tasks(value)
            labels = task_label_names(value)
            super().__setattr__("id2label", dict(enumerate(labels)))
            super().__setattr__("label2id", {label: index for index, label in enumerate(labels)})
        super().__setattr__(key, value)

    @property
    def num_labels(self) -> int:
        return len(task_label_names(self.tasks)) if self.tasks is not None else len(self.id2label or {})

    @num_labels.setter
    def num_labels(self, num_labels: int) -> None:
        if self.tasks is not None and num_labels != self.num_labels:
            raise ValueError(
                f"num_labels={num_labels} does not fit the tasks {self.tasks}, which have {self.num_labels} outputs; "
                "set `tasks` instead (the labels follow it)."
            )

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
