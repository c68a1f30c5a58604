"""transformers' calling conventions on the affect models: `output_hidden_states`, `output_attentions`,
`return_dict=False`, and no silently swallowed keyword arguments."""

import pytest
import torch
from torch import nn

from modeling_abaw import FaceMAEConfig, FaceMAEForAffect, TMFConfig, TMFForAffect

TINY_TMF = dict(
    modalities={"mae": 16, "hubert": 8},
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=64,
    clip_length=12,
)


@pytest.fixture
def face_mae(tiny_face_mae_kwargs):
    torch.manual_seed(0)
    return FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs, attn_implementation="eager")).eval()


@pytest.fixture
def tmf():
    torch.manual_seed(0)
    return TMFForAffect(TMFConfig(**TINY_TMF)).eval()


def tmf_inputs(batch_size=2):
    generator = torch.Generator().manual_seed(0)
    features = {
        name: torch.randn(batch_size, 12, size, generator=generator) for name, size in TINY_TMF["modalities"].items()
    }
    attention_mask = torch.ones(batch_size, 12, dtype=torch.long)
    attention_mask[0, 8:] = 0
    return {"features": features, "attention_mask": attention_mask}


@torch.no_grad()
def test_face_mae_hidden_states_and_attentions(face_mae):
    pixel_values = torch.randn(2, 3, 32, 32)
    plain = face_mae(pixel_values)
    assert plain.hidden_states is None and plain.attentions is None
    outputs = face_mae(pixel_values, output_hidden_states=True, output_attentions=True)
    # The embeddings, then every layer's output: 2 layers, 1 + 16 tokens.
    assert len(outputs.hidden_states) == 3 and all(h.shape == (2, 17, 32) for h in outputs.hidden_states)
    torch.testing.assert_close(face_mae.fc_norm(outputs.hidden_states[-1][:, 1:].mean(1)), outputs.features)
    assert len(outputs.attentions) == 2 and all(a.shape == (2, 4, 17, 17) for a in outputs.attentions)
    torch.testing.assert_close(outputs.attentions[0].sum(-1), torch.ones(2, 4, 17))
    for name in ("au_logits", "expr_logits", "va", "features"):
        assert torch.equal(outputs[name], plain[name])


@torch.no_grad()
def test_face_mae_config_defaults_and_tuple_output(face_mae):
    pixel_values = torch.randn(2, 3, 32, 32)
    outputs = face_mae(pixel_values)
    as_tuple = face_mae(pixel_values, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 4
    for value, expected in zip(as_tuple, (outputs.au_logits, outputs.expr_logits, outputs.va, outputs.features)):
        assert torch.equal(value, expected)
    face_mae.config.output_hidden_states = True
    assert len(face_mae(pixel_values).hidden_states) == 3


def test_face_mae_attentions_need_eager_attention_and_unknown_arguments_raise(tiny_face_mae_kwargs, face_mae):
    sdpa = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs, attn_implementation="sdpa")).eval()
    with pytest.raises(ValueError, match="output_attentions=True needs the eager attention"):
        sdpa(torch.randn(1, 3, 32, 32), output_attentions=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'au_label'"):
        face_mae(torch.randn(1, 3, 32, 32), au_label=torch.zeros(1, 12))


@torch.no_grad()
def test_tmf_hidden_states_and_attentions(tmf):
    inputs = tmf_inputs()
    plain = tmf(**inputs)
    assert plain.hidden_states is None and plain.attentions is None
    outputs = tmf(**inputs, output_hidden_states=True, output_attentions=True)
    assert len(outputs.hidden_states) == 4 and all(h.shape == (2, 12, 32) for h in outputs.hidden_states)
    torch.testing.assert_close(tmf.final_norm(outputs.hidden_states[-1]), outputs.features)
    assert len(outputs.attentions) == 3 and all(a.shape == (2, 4, 12, 12) for a in outputs.attentions)
    attention = outputs.attentions[0]
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 4, 12))
    assert torch.all(attention[0, :, :, 8:] == 0)  # padded frames are never attended to
    # Asking for attentions takes torch's unfused path: the same numbers up to rounding.
    torch.testing.assert_close(outputs.va, plain.va)
    # The hooks lived for that call only.
    assert all(
        not layer.self_attn._forward_hooks and not layer.self_attn._forward_pre_hooks for layer in tmf.encoder.layers
    )
    hidden_only = tmf(**inputs, output_hidden_states=True)
    assert hidden_only.attentions is None and torch.equal(hidden_only.va, plain.va)


@torch.no_grad()
def test_tmf_encoder_keeps_torchs_layer_layout_and_numbers(tmf):
    """The encoder's weights keep nn.TransformerEncoder's names, and the layer-by-layer run its outputs."""
    config = tmf.config
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
    reference = nn.TransformerEncoder(layer, config.num_hidden_layers, enable_nested_tensor=False).eval()
    reference.load_state_dict(tmf.encoder.state_dict(), strict=True)
    hidden_states, padding = torch.randn(2, 12, 32), torch.zeros(2, 12, dtype=torch.bool)
    padding[0, 8:] = True
    expected = reference(hidden_states, src_key_padding_mask=padding)
    assert torch.equal(tmf.encoder(hidden_states, padding)[0], expected)


@torch.no_grad()
def test_tmf_tuple_output_and_unknown_arguments(tmf):
    inputs = tmf_inputs()
    outputs = tmf(**inputs)
    as_tuple = tmf(**inputs, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 4 and torch.equal(as_tuple[2], outputs.va)
    with pytest.raises(TypeError, match="unexpected keyword argument 'labels'"):
        tmf(**inputs, labels=torch.zeros(2, 12))
    tmf.config.output_hidden_states = True
    assert len(tmf(**inputs).hidden_states) == 4
