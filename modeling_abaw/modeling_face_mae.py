"""FaceMAE models: masked-autoencoder pre-training on faces and the frame-wise affect model (paper Sec. 3.1).

Both build on transformers' ViT-MAE: `FaceMAEForPreTraining` is `ViTMAEForPreTraining` (same weight layout and
numerics, so ImageNet MAE checkpoints load into it); `FaceMAEForAffect` reuses its encoder weights (`vit.*`) without
masking or token shuffling, pools like MAE fine-tuning (mean of the patch tokens, then `fc_norm`) and adds the
AU / expression / valence-arousal heads.
"""

import torch
from torch import nn
from transformers import ViTImageProcessorPil
from transformers.conversion_mapping import get_checkpoint_conversion_mapping, register_checkpoint_conversion_mapping
from transformers.models.vit_mae.modeling_vit_mae import (
    ViTMAEEmbeddings,
    ViTMAEForPreTraining,
    ViTMAELayer,
    ViTMAEPreTrainedModel,
)
from transformers.utils.output_capturing import capture_outputs

from .affect_heads import AffectHeads, AffectOutput
from .configuration_face_mae import IMAGENET_MEAN, IMAGENET_STD, FaceMAEConfig, FaceMAEPreTrainingConfig


def face_image_processor(config: FaceMAEConfig) -> ViTImageProcessorPil:
    """The image processor matching a FaceMAE config: resize to the model's input size, MAE's normalisation."""
    return ViTImageProcessorPil(
        size={"height": config.image_size, "width": config.image_size},
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )


class FaceMAEPreTrainedModel(ViTMAEPreTrainedModel):
    config_class = FaceMAEConfig
    config: FaceMAEConfig

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save the model and, beside it, its image processor, so `AutoImageProcessor` works on every checkpoint."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            face_image_processor(self.config).save_pretrained(save_directory)


class FaceMAEForPreTraining(FaceMAEPreTrainedModel, ViTMAEForPreTraining):
    """MAE pre-training on face crops: 75% of the 16x16 patches masked, pixel L2 loss on the masked patches."""

    config_class = FaceMAEPreTrainingConfig
    config: FaceMAEPreTrainingConfig


class FaceMAEEncoder(nn.Module):
    """The ViT-MAE encoder run on every patch, in order: no masking, no shuffling, deterministic.

    Its parameters carry ViTMAEModel's names (`embeddings.*`, `layers.N.*`), so a pre-training checkpoint's `vit.*`
    weights load into `FaceMAEForAffect.vit`. The encoder's final `layernorm` is left out, as in MAE fine-tuning with
    global pooling, where `fc_norm` after pooling replaces it.
    """

    def __init__(self, config: FaceMAEConfig):
        super().__init__()
        self.config = config
        self.embeddings = ViTMAEEmbeddings(config)
        self.layers = nn.ModuleList([ViTMAELayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        embeddings = self.embeddings
        height, width = pixel_values.shape[-2:]
        patches = embeddings.patch_embeddings(pixel_values.to(embeddings.patch_embeddings.projection.weight.dtype))
        if interpolate_pos_encoding:
            position_embeddings = embeddings.interpolate_pos_encoding(patches, height, width)
        else:
            if (height, width) != tuple(embeddings.image_size):
                raise ValueError(
                    f"Input image size ({height}x{width}) doesn't match the model ({embeddings.image_size[0]}x"
                    f"{embeddings.image_size[1]}); resize it with the model's image processor or pass "
                    "interpolate_pos_encoding=True."
                )
            position_embeddings = embeddings.position_embeddings
        cls_tokens = (embeddings.cls_token + position_embeddings[:, :1]).expand(patches.shape[0], -1, -1)
        hidden_states = torch.cat([cls_tokens, patches + position_embeddings[:, 1:]], dim=1)
        for layer in self.layers:
            hidden_states = layer(hidden_states, None)
        return hidden_states


# transformers stores ViT-MAE weights under their original names (`vit.encoder.layer.N.attention.attention.query`)
# and renames them on load. The affect model's encoder is not a ViTMAEModel, so it declares the same renaming:
# its checkpoints keep MAE's layout and pre-training checkpoints load into it.
register_checkpoint_conversion_mapping(
    "FaceMAEForAffect", get_checkpoint_conversion_mapping("ViTModel"), overwrite=True
)


class FaceMAEForAffect(FaceMAEPreTrainedModel):
    """FaceMAE encoder fine-tuned frame by frame for action units, expression and valence/arousal."""

    def __init__(self, config: FaceMAEConfig):
        super().__init__(config)
        self.vit = FaceMAEEncoder(config)
        self.fc_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.affect_heads = AffectHeads(config, in_features=config.hidden_size)
        self.post_init()

    # The hidden states (every ViTMAELayer's input and output) and attention probabilities (every ViTMAEAttention's)
    # are recorded by transformers' hooks, as in ViTMAEModel (`_can_record_outputs` of ViTMAEPreTrainedModel), which
    # also turns the output into a tuple for `return_dict=False`. The hidden states stop before `fc_norm`, as
    # ViTMAE's stop before its final layer norm.
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        pixel_values: torch.Tensor,
        au_labels: torch.Tensor | None = None,
        expr_labels: torch.Tensor | None = None,
        va_labels: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
        *,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> AffectOutput:
        r"""
        pixel_values (`torch.Tensor` of shape `(batch_size, 3, image_size, image_size)`): normalised face crops.
        au_labels (`(batch_size, 12)`), expr_labels (`(batch_size,)`), va_labels (`(batch_size, 2)`), *optional*:
            labels with the official "no label" markers (AU -1, EXPR -1, VA -5), which the losses ignore.
        interpolate_pos_encoding (`bool`, defaults to `False`): interpolate the position embeddings to another
            input size.
        output_attentions, output_hidden_states (`bool`, *optional*, default from the config): also return the
            encoder's attention probabilities / hidden states (read by `capture_outputs`). Attention probabilities
            need the eager attention (`attn_implementation="eager"`).
        return_dict (`bool`, *optional*, default from the config): `False` returns a tuple of the outputs that are
            not None.
        """
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        if output_attentions and self.config._attn_implementation != "eager":
            # SDPA and flash attention never form the probabilities: say so rather than return an empty tuple.
            raise ValueError(
                f"output_attentions=True needs the eager attention, but this model uses "
                f"{self.config._attn_implementation!r}; load it with attn_implementation='eager' or call "
                "model.set_attn_implementation('eager')."
            )
        hidden_states = self.vit(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding)
        features = self.fc_norm(hidden_states[:, 1:].mean(dim=1))
        labels = {"au_labels": au_labels, "expr_labels": expr_labels, "va_labels": va_labels}
        return self.affect_heads(features, labels)


FaceMAEForPreTraining.register_for_auto_class("AutoModel")
FaceMAEForAffect.register_for_auto_class("AutoModel")
