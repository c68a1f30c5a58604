"""TMF configuration: the paper's Transformer-based Multi-modal Fusion over clips of per-frame features (Sec. 3.2)."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .configuration_affect import AffectConfigMixin

# The paper's feature sets: the FaceMAE visual feature, HuBERT and VGGish acoustic features.
DEFAULT_MODALITIES = {"mae": 768, "hubert": 768, "vggish": 128}
# The visual modality is always present; every other modality is audio and may be absent from a video.
VISUAL_MODALITY = "mae"


@strict
class TMFConfig(AffectConfigMixin, PreTrainedConfig):
    r"""
    Configuration of `TMFForAffect`.

    modalities (`dict[str, int]`, defaults to `{"mae": 768, "hubert": 768, "vggish": 128}`):
        Every per-frame feature the checkpoint knows, with its size.
    used_modalities (`list[str]`, *optional*):
        The modalities the model fuses, concatenated visual first, then audio by name. The paper's best: "mae" alone
        for AU; "mae", "hubert" and "vggish" for EXPR and VA. Defaults to all of `modalities`.
    hidden_size (`int`, defaults to 512): width of the fusion transformer (the concatenated features are projected
        to it).
    num_hidden_layers (`int`, defaults to 4), num_attention_heads (`int`, defaults to 8), intermediate_size (`int`,
        defaults to 1024): the transformer encoder; the paper uses 4 layers.
    dropout (`float`, defaults to 0.3): the paper's dropout, in the projection and in every encoder layer.
    clip_length (`int`, defaults to 100): K, frames per clip (the paper's setting); also the number of learned
        position embeddings.
    layer_norm_eps (`float`, defaults to 1e-5)
    backbones (`dict[str, dict]`, *optional*):
        How each modality's features were made, so the checkpoint says how to rebuild its inputs, e.g.
        `{"mae": {"model": "<org>/face-mae-affect"}, "hubert": {"model": "facebook/hubert-base-ls960", "layer": -1}}`.
    The affect fields (tasks, label names, loss weights, smoothing policy) are `AffectConfigMixin`'s.
    """

    model_type = "tmf_affect"

    modalities: dict[str, int] | None = None
    used_modalities: list[str] | None = None
    hidden_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 8
    intermediate_size: int = 1024
    dropout: float = 0.3
    clip_length: int = 100
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    backbones: dict[str, dict] | None = None

    def __post_init__(self, **kwargs):
        self._init_affect_fields()
        self.modalities = dict(DEFAULT_MODALITIES if self.modalities is None else self.modalities)
        if VISUAL_MODALITY not in self.modalities:
            raise ValueError(f"modalities {self.modalities} must include the visual feature {VISUAL_MODALITY!r}")
        if self.used_modalities is None:
            self.used_modalities = list(self.modalities)
        unknown = [name for name in self.used_modalities if name not in self.modalities]
        if unknown or not self.used_modalities:
            raise ValueError(
                f"used_modalities {self.used_modalities} must be a non-empty subset of {list(self.modalities)}"
            )
        # A canonical order (visual first, then audio by name) fixes the feature concatenation; config.json sorts
        # dict keys, so the order of `modalities` cannot.
        self.used_modalities = sorted(set(self.used_modalities), key=lambda name: (name != VISUAL_MODALITY, name))
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        self.backbones = dict(self.backbones or {})
        super().__post_init__(**kwargs)

    @property
    def audio_modalities(self) -> list[str]:
        return [name for name in self.used_modalities if name != VISUAL_MODALITY]


TMFConfig.register_for_auto_class()
