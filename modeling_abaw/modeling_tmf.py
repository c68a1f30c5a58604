"""TMFForAffect: Transformer-based Multi-modal Fusion (paper Sec. 3.2).

Per frame, the frozen backbones' features (FaceMAE visual feature, HuBERT / wav2vec2 / VGGish audio features aligned
to the frame) are concatenated, projected, given a learned position in the clip, and a transformer encoder over the
clip of K=100 frames mixes them in time; the affect heads then predict every frame.
"""

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init

from .affect_heads import AffectHeads, AffectOutput
from .configuration_tmf import TMFConfig


class TMFPreTrainedModel(PreTrainedModel):
    config_class = TMFConfig
    config: TMFConfig
    base_model_prefix = "tmf"
    main_input_name = "features"

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, TMFForAffect):
            init.normal_(module.position_embeddings, std=self.config.initializer_range)


class TMFForAffect(TMFPreTrainedModel):
    def __init__(self, config: TMFConfig):
        super().__init__(config)
        # Each audio modality carries one extra "present" channel: a video without audio gives zero features and
        # a zero indicator, so the model can tell silence from absence.
        input_size = sum(config.modalities[name] for name in config.used_modalities) + len(config.audio_modalities)
        self.projection = nn.Sequential(
            nn.Linear(input_size, config.hidden_size), nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        )
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.clip_length, config.hidden_size))
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            config.hidden_size,
            config.num_attention_heads,
            config.intermediate_size,
            dropout=config.dropout,
            activation="gelu",
            layer_norm_eps=config.layer_norm_eps,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.num_hidden_layers, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.affect_heads = AffectHeads(config, in_features=config.hidden_size)
        self.post_init()

    def forward(
        self,
        features: dict[str, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        modality_mask: dict[str, torch.Tensor] | None = None,
        au_labels: torch.Tensor | None = None,
        expr_labels: torch.Tensor | None = None,
        va_labels: torch.Tensor | None = None,
        **kwargs,
    ) -> AffectOutput:
        r"""
        features (`dict[str, torch.Tensor]`): per modality of `config.used_modalities`, `(batch, K, size)`.
        attention_mask (`(batch, K)`, *optional*): 1 for real frames, 0 for padding. Padding is never attended to
            and its labels are ignored.
        modality_mask (`dict[str, torch.Tensor]`, *optional*): per audio modality `(batch, K)`, 1 where the
            feature exists; missing entries mean "present".
        au_labels (`(batch, K, 12)`), expr_labels (`(batch, K)`), va_labels (`(batch, K, 2)`), *optional*:
            per-frame labels with the official "no label" markers.

        Returns per-frame outputs: `au_logits (batch, K, 12)`, `expr_logits (batch, K, 8)`, `va (batch, K, 2)` and
        `features (batch, K, hidden_size)`.
        """
        missing = [name for name in self.config.used_modalities if name not in features]
        if missing:
            raise ValueError(f"TMFForAffect needs the features {missing} (it fuses {self.config.used_modalities}).")
        batch_size, clip_length = features[self.config.used_modalities[0]].shape[:2]
        if clip_length > self.config.clip_length:
            raise ValueError(f"Clips have {clip_length} frames; this model takes at most {self.config.clip_length}.")
        modality_mask = modality_mask or {}
        inputs = []
        for name in self.config.used_modalities:
            values = features[name].to(self.dtype)
            if name in self.config.audio_modalities:
                present = modality_mask.get(name, torch.ones(batch_size, clip_length, device=values.device))
                present = present.to(self.dtype).unsqueeze(-1)
                inputs += [values * present, present]
            else:
                inputs.append(values)
        hidden_states = self.projection(torch.cat(inputs, dim=-1)) + self.position_embeddings[:, :clip_length]
        hidden_states = self.dropout(hidden_states)
        padding = None if attention_mask is None else ~attention_mask.bool()
        hidden_states = self.final_norm(self.encoder(hidden_states, src_key_padding_mask=padding))
        return self.affect_heads(
            hidden_states,
            au_labels=au_labels,
            expr_labels=expr_labels,
            va_labels=va_labels,
            valid_mask=attention_mask,
        )
