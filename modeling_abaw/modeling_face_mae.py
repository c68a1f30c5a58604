"""FaceMAE models: masked-autoencoder pre-training on faces and the frame-wise affect model (paper Sec. 3.1).

Both build on transformers' ViT-MAE: `FaceMAEForPreTraining` is `ViTMAEForPreTraining` (same weight layout and
numerics, so ImageNet MAE checkpoints load into it); `FaceMAEForAffect` reuses its encoder weights (`vit.*`) without
masking or token shuffling, pools like MAE fine-tuning (mean of the patch tokens, then `fc_norm`) and adds the
AU / expression / valence-arousal heads. It fine-tunes with MAE's recipe (`main_finetune.py`): stochastic depth in the
encoder layers, learnable position embeddings, and new heads initialised with `trunc_normal_(std=2e-5)`.
"""

import torch
from torch import nn
from transformers import ViTImageProcessorPil
from transformers import initialization as init
from transformers.conversion_mapping import get_checkpoint_conversion_mapping, register_checkpoint_conversion_mapping
from transformers.models.vit_mae.modeling_vit_mae import (
    ViTMAEDecoder,
    ViTMAEEmbeddings,
    ViTMAEForPreTraining,
    ViTMAELayer,
    ViTMAEPreTrainedModel,
    build_2d_sinusoidal_position_embedding,
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


def sincos_position_embeddings(num_patches: int, dim: int) -> torch.Tensor:
    """MAE's fixed 2-D sin-cos position embeddings, (1, 1 + num_patches, dim) with a zero row for the cls token, in
    the layout of MAE's checkpoints (its h/w halves swapped, as `ViTMAEEmbeddings.initialize_weights` rotates them)."""
    grid = int(num_patches**0.5)
    embeddings = build_2d_sinusoidal_position_embedding(height=grid, width=grid, embed_dim=dim, cls_token=True)
    half = dim // 2
    return torch.cat([embeddings[..., half:], embeddings[..., :half]], dim=-1).unsqueeze(0)


class FaceMAEPreTrainedModel(ViTMAEPreTrainedModel):
    config_class = FaceMAEConfig
    config: FaceMAEConfig

    def initialize_weights(self):
        super().initialize_weights()
        # MAE initialises both position embeddings to fixed 2-D sin-cos ones. transformers 5.24's ViT-MAE init leaves
        # them at zero in a model built from scratch (the encoder's is skipped once its patch projection is
        # initialised, and the decoder's is zeroed), so every patch looks alike to the transformer and pre-training
        # reconstructs each image as one flat colour. Set here, after every module's own init, because a sub-model
        # (`vit` of the pre-training model) is initialised by its own class's `_init_weights`. `init.copy_` skips
        # position embeddings loaded from a checkpoint.
        for module in self.modules():
            if isinstance(module, ViTMAEEmbeddings):
                table = module.position_embeddings
                init.copy_(table, sincos_position_embeddings(module.patch_embeddings.num_patches, table.shape[-1]))
            elif isinstance(module, ViTMAEDecoder):
                table = module.decoder_pos_embed
                init.copy_(table, sincos_position_embeddings(table.shape[1] - 1, table.shape[-1]))

    def _set_position_embeddings_requires_grad(self) -> None:
        """Whether the position embeddings train: MAE keeps its sin-cos embeddings fixed in pre-training and learns
        them in fine-tuning."""
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # transformers' loading makes every floating-point parameter it loads trainable, fixed position embeddings
        # included: set them back.
        loaded = super().from_pretrained(*args, **kwargs)
        (loaded[0] if isinstance(loaded, tuple) else loaded)._set_position_embeddings_requires_grad()
        return loaded

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save the model and, beside it, its image processor, so `AutoImageProcessor` works on every checkpoint."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            face_image_processor(self.config).save_pretrained(save_directory)


class FaceMAEForPreTraining(FaceMAEPreTrainedModel, ViTMAEForPreTraining):
    """MAE pre-training on face crops: 75% of the 16x16 patches masked, pixel L2 loss on the masked patches."""

    config_class = FaceMAEPreTrainingConfig
    config: FaceMAEPreTrainingConfig

    def _set_position_embeddings_requires_grad(self) -> None:
        self.vit.embeddings.position_embeddings.requires_grad_(False)
        self.decoder.decoder_pos_embed.requires_grad_(False)


def drop_path(hidden_states: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth (timm's `drop_path`): in training, zero a residual branch for whole samples with probability
    `rate`, and scale the kept samples by 1 / (1 - rate) so the expected output is unchanged; the identity otherwise."""
    if rate == 0.0 or not training:
        return hidden_states
    keep_prob = 1.0 - rate
    keep = hidden_states.new_empty((hidden_states.shape[0],) + (1,) * (hidden_states.dim() - 1)).bernoulli_(keep_prob)
    return hidden_states * keep.div_(keep_prob)


class FaceMAELayer(ViTMAELayer):
    """A ViT-MAE encoder layer with stochastic depth on both residual branches (attention and MLP), as MAE fine-tunes
    (timm's `Block`). Same parameters as `ViTMAELayer`, and the same numerics at `drop_path_rate=0` or in eval mode."""

    def __init__(self, config: FaceMAEConfig, drop_path_rate: float = 0.0):
        super().__init__(config)
        self.drop_path_rate = drop_path_rate

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        residual = hidden_states
        hidden_states, _ = self.attention(self.layernorm_before(hidden_states), attention_mask, **kwargs)
        hidden_states = drop_path(self.dropout(hidden_states), self.drop_path_rate, self.training) + residual

        residual = hidden_states
        hidden_states = self.mlp(self.layernorm_after(hidden_states))
        return drop_path(self.dropout(hidden_states), self.drop_path_rate, self.training) + residual


class FaceMAEEncoder(nn.Module):
    """The ViT-MAE encoder run on every patch, in order: no masking, no shuffling.

    Its parameters carry ViTMAEModel's names (`embeddings.*`, `layers.N.*`), so a pre-training checkpoint's `vit.*`
    weights load into `FaceMAEForAffect.vit`. The encoder's final `layernorm` is left out, as in MAE fine-tuning with
    global pooling, where `fc_norm` after pooling replaces it. Stochastic depth rises linearly over the layers from 0
    to `config.drop_path_rate`, as in MAE fine-tuning (timm's `VisionTransformer`); eval mode is deterministic.
    """

    def __init__(self, config: FaceMAEConfig):
        super().__init__()
        self.config = config
        self.embeddings = ViTMAEEmbeddings(config)
        rates = torch.linspace(0, config.drop_path_rate, config.num_hidden_layers).tolist()
        self.layers = nn.ModuleList([FaceMAELayer(config, rate) for rate in rates])

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
        self._set_position_embeddings_requires_grad()
        self.post_init()

    def _set_position_embeddings_requires_grad(self) -> None:
        self.vit.embeddings.position_embeddings.requires_grad_(self.config.learnable_position_embeddings)

    def _init_weights(self, module):
        super()._init_weights(module)
        # MAE fine-tuning's head init: `trunc_normal_(head.weight, std=2e-5)`, zero bias. transformers' init functions
        # skip weights loaded from a checkpoint, so only the heads a checkpoint lacks get it. The head layers are
        # matched themselves: for models defined outside transformers, its init skips modules without parameters of
        # their own, such as AffectHeads.
        if module in self.affect_heads.heads.values():
            init.trunc_normal_(module.weight, std=self.config.head_initializer_range)
            init.zeros_(module.bias)

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
