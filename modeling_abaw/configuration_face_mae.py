"""FaceMAE configuration: a ViT-MAE (ViT-Base/16 at 224x224 by default) pre-trained on faces, plus its affect heads."""

from huggingface_hub.dataclasses import strict
from transformers.models.vit_mae.configuration_vit_mae import ViTMAEConfig

from .tasks import AU, EXPR, TASKS, default_smoothing_policy, validate_tasks

# MAE normalises pixels with the ImageNet statistics; FaceMAE keeps them so MAE checkpoints transfer.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@strict
class FaceMAEConfig(ViTMAEConfig):
    r"""
    Configuration of `FaceMAEForAffect` (and, through `FaceMAEPreTrainingConfig`, of `FaceMAEForPreTraining`).

    The encoder/decoder fields are `ViTMAEConfig`'s with the paper's defaults: ViT-Base/16 at 224x224, 75% of the
    patches masked, a 512-d 8-layer decoder and a pixel L2 loss (`norm_pix_loss` optional). The layer-norm epsilon
    is MAE's 1e-6 (transformers' ViTMAE default is 1e-12) so that MAE checkpoints reproduce their numerics.

    tasks (`list[str]`, defaults to `["au", "expr", "va"]`):
        The ABAW tasks the affect heads predict, any of "au" (12 action units), "expr" (8 expressions) and
        "va" (valence and arousal).
    label_names (`dict[str, list[str]]`, *optional*):
        Output names per task, filled from the task registry (`modeling_abaw.tasks`); stored so the checkpoint
        describes its outputs.
    au_pos_weight (`list[float]`, *optional*):
        Weight of the positive class of each AU in the BCE loss (inverse frequency in the training split).
        Defaults to ones.
    expr_class_weight (`list[float]`, *optional*):
        Weight of each expression class in the cross-entropy loss (inverse frequency). Defaults to ones.
    smoothing_policy (`dict`, *optional*):
        Temporal post-processing per task applied at inference (see `modeling_abaw.smoothing`). Defaults to the
        paper's gaussian filters.
    """

    model_type = "face_mae"

    layer_norm_eps: float = 1e-6
    tasks: list[str] | None = None
    label_names: dict[str, list[str]] | None = None
    au_pos_weight: list[float] | None = None
    expr_class_weight: list[float] | None = None
    smoothing_policy: dict | None = None

    def __post_init__(self, **kwargs):
        self.tasks = validate_tasks(self.tasks if self.tasks is not None else list(TASKS))
        expected_names = {name: list(TASKS[name].labels) for name in self.tasks}
        if self.label_names is not None and self.label_names != expected_names:
            raise ValueError(f"label_names {self.label_names} do not match the task registry: {expected_names}")
        self.label_names = expected_names
        self.au_pos_weight = _weights_or_ones(self.au_pos_weight, AU.num_outputs, "au_pos_weight")
        self.expr_class_weight = _weights_or_ones(self.expr_class_weight, EXPR.num_outputs, "expr_class_weight")
        if self.smoothing_policy is None:
            self.smoothing_policy = default_smoothing_policy(self.tasks)
        super().__post_init__(**kwargs)


@strict
class FaceMAEPreTrainingConfig(FaceMAEConfig):
    """The same configuration under its own model type, so the Auto classes map it to `FaceMAEForPreTraining`."""

    model_type = "face_mae_pretraining"


def _weights_or_ones(weights, size: int, name: str) -> list[float]:
    if weights is None:
        return [1.0] * size
    weights = [float(weight) for weight in weights]
    if len(weights) != size or any(weight < 0 for weight in weights):
        raise ValueError(f"{name} needs {size} non-negative values, got {weights}")
    return weights
