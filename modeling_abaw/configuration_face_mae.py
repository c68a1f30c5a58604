"""FaceMAE configuration: a ViT-MAE (ViT-Base/16 at 224x224 by default) pre-trained on faces, plus its affect heads."""

from huggingface_hub.dataclasses import strict
from transformers.models.vit_mae.configuration_vit_mae import ViTMAEConfig

from .configuration_affect import AffectConfigMixin

# MAE normalises pixels with the ImageNet statistics; FaceMAE keeps them so MAE checkpoints transfer.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@strict
class FaceMAEConfig(AffectConfigMixin, ViTMAEConfig):
    r"""
    Configuration of `FaceMAEForAffect` (and, through `FaceMAEPreTrainingConfig`, of `FaceMAEForPreTraining`).

    The encoder/decoder fields are `ViTMAEConfig`'s with the paper's defaults: ViT-Base/16 at 224x224, 75% of the
    patches masked, a 512-d 8-layer decoder and a pixel L2 loss (`norm_pix_loss` optional). The layer-norm epsilon
    is MAE's 1e-6 (transformers' ViTMAE default is 1e-12) so that MAE checkpoints reproduce their numerics.
    The affect fields (tasks, label names, loss weights, smoothing policy) are `AffectConfigMixin`'s.

    MAE fine-tuning recipe (used by `FaceMAEForAffect`; the pre-training model ignores them):
    drop_path_rate (`float`, defaults to 0.0): stochastic depth of the encoder layers, rising linearly from 0 at the
        first layer to this rate at the last (MAE-Face fine-tunes with 0.1).
    head_initializer_range (`float`, defaults to 2e-5): std of the truncated-normal init of newly created affect
        heads (MAE's `trunc_normal_(head.weight, std=2e-5)`).
    learnable_position_embeddings (`bool`, defaults to True): fine-tune the position embeddings (MAE pre-training
        keeps its sin-cos embeddings fixed; MAE fine-tuning learns them).
    """

    model_type = "face_mae"

    layer_norm_eps: float = 1e-6
    drop_path_rate: float = 0.0
    head_initializer_range: float = 2e-5
    learnable_position_embeddings: bool = True

    def __post_init__(self, **kwargs):
        self._init_affect_fields()
        super().__post_init__(**kwargs)


@strict
class FaceMAEPreTrainingConfig(FaceMAEConfig):
    """The same configuration under its own model type, so the Auto classes map it to `FaceMAEForPreTraining`."""

    model_type = "face_mae_pretraining"


FaceMAEConfig.register_for_auto_class()
FaceMAEPreTrainingConfig.register_for_auto_class()
