"""Named FaceMAE sizes, shared by the demo, the benchmarks and the docs, so a size name means one model everywhere.

Each preset is a dict of `FaceMAEConfig` overrides (the empty dict is the paper's ViT-Base/16 at 224x224). The names
say the architecture: ViT-S/16 and ViT-B/16 are the standard widths and depths at 224x224; the two demo sizes are
narrower and shallower ViTs at SynthAffect's small crop sizes, which a 2-core CPU pre-trains in minutes.
"""

FACE_MAE_PRESETS: dict[str, dict] = {
    # 96-d, 4 layers, 8x8 patches on 64x64 crops (64 patches): the default demo's size (and the tests').
    "demo-tiny": dict(
        image_size=64, patch_size=8, hidden_size=96, num_hidden_layers=4, num_attention_heads=3,
        intermediate_size=384, decoder_hidden_size=64, decoder_num_hidden_layers=1, decoder_num_attention_heads=4,
        decoder_intermediate_size=256,
    ),
    # 192-d, 6 layers, 16x16 patches on 112x112 crops (49 patches): SynthAffect's full crop size.
    "demo-small": dict(
        image_size=112, patch_size=16, hidden_size=192, num_hidden_layers=6, num_attention_heads=3,
        intermediate_size=768, decoder_hidden_size=128, decoder_num_hidden_layers=2, decoder_num_attention_heads=4,
        decoder_intermediate_size=512,
    ),
    # ViT-S/16 at 224x224: 384-d, 12 layers, 6 heads.
    "vit-small": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
    # ViT-B/16 at 224x224, the paper's FaceMAE.
    "vit-base": {},
}  # fmt: skip


def face_mae_preset(name: str) -> dict:
    """The `FaceMAEConfig` overrides of a preset (a copy), with a clear error for an unknown name."""
    if name not in FACE_MAE_PRESETS:
        raise ValueError(f"Unknown FaceMAE size {name!r}; choose from {', '.join(FACE_MAE_PRESETS)}.")
    return dict(FACE_MAE_PRESETS[name])
