"""TMFForAffect: Transformer-based Multi-modal Fusion (paper Sec. 3.2).

Per frame, the frozen backbones' features (FaceMAE visual feature, HuBERT / wav2vec2 / VGGish audio features aligned
to the frame) are concatenated, projected, given a learned position in the clip, and a transformer encoder over the
clip of K=100 frames mixes them in time; the affect heads then predict every frame.
"""

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils.generic import can_return_tuple

from .affect_heads import AffectHeads, AffectOutput
from .configuration_tmf import TMFConfig


class TMFEncoder(nn.Module):
    """The fusion transformer: pre-norm encoder layers (torch's `nn.TransformerEncoderLayer`) over a clip's frames.

    Run layer by layer, as `nn.TransformerEncoder` runs them without nested tensors, so that the hidden states
    between layers can be returned. torch's layers compute attention without its probabilities; when they are asked
    for, each layer's attention is called for them (`need_weights`) through hooks that live for that call only, so
    the layers and their weights stay torch's (hooks only turn off torch's fused inference path for that call).
    """

    def __init__(self, config: TMFConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                config.hidden_size,
                config.num_attention_heads,
                config.intermediate_size,
                dropout=config.dropout,
                activation="gelu",
                layer_norm_eps=config.layer_norm_eps,
                batch_first=True,
                norm_first=True,
            )
            for _ in range(config.num_hidden_layers)
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        padding: torch.Tensor | None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """`padding` (batch, K) is True at padded frames. Returns the last hidden states, then, when asked for, the
        `num_hidden_layers + 1` hidden states (the first layer's input, then every layer's output) and the
        `num_hidden_layers` attention probabilities (batch, heads, K, K)."""
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        attentions = []
        hooks = []
        if output_attentions:

            def ask_for_weights(module, args, kwargs):
                return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

            def record_weights(module, args, output):
                attentions.append(output[1])

            for layer in self.layers:
                hooks.append(layer.self_attn.register_forward_pre_hook(ask_for_weights, with_kwargs=True))
                hooks.append(layer.self_attn.register_forward_hook(record_weights))
        try:
            for layer in self.layers:
                hidden_states = layer(hidden_states, src_key_padding_mask=padding)
                if output_hidden_states:
                    all_hidden_states += (hidden_states,)
        finally:
            for hook in hooks:
                hook.remove()
        return hidden_states, all_hidden_states, tuple(attentions) if output_attentions else None


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
        self.encoder = TMFEncoder(config)
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.affect_heads = AffectHeads(config, in_features=config.hidden_size)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        features: dict[str, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        modality_mask: dict[str, torch.Tensor] | None = None,
        au_labels: torch.Tensor | None = None,
        expr_labels: torch.Tensor | None = None,
        va_labels: torch.Tensor | None = None,
        *,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> AffectOutput:
        r"""
        features (`dict[str, torch.Tensor]`): per modality of `config.used_modalities`, `(batch, K, size)`.
        attention_mask (`(batch, K)`, *optional*): 1 for real frames, 0 for padding. Padding is never attended to
            and its labels are ignored.
        modality_mask (`dict[str, torch.Tensor]`, *optional*): per audio modality `(batch, K)`, 1 where the
            feature exists; missing entries mean "present".
        au_labels (`(batch, K, 12)`), expr_labels (`(batch, K)`), va_labels (`(batch, K, 2)`), *optional*:
            per-frame labels with the official "no label" markers.
        output_attentions, output_hidden_states (`bool`, *optional*, default from the config): also return the
            encoder's attention probabilities / hidden states.
        return_dict (`bool`, *optional*, default from the config): `False` returns a tuple of the outputs that are
            not None.

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
        hidden_states, all_hidden_states, attentions = self.encoder(
            hidden_states,
            padding,
            output_hidden_states=self.config.output_hidden_states
            if output_hidden_states is None
            else output_hidden_states,
            output_attentions=self.config.output_attentions if output_attentions is None else output_attentions,
        )
        labels = {"au_labels": au_labels, "expr_labels": expr_labels, "va_labels": va_labels}
        outputs = self.affect_heads(self.final_norm(hidden_states), labels, valid_mask=attention_mask)
        outputs.hidden_states, outputs.attentions = all_hidden_states, attentions
        return outputs


TMFForAffect.register_for_auto_class("AutoModel")
