import json

import pytest
import torch
from transformers import AutoModel

from modeling_abaw import TMFConfig, TMFForAffect

TINY_TMF = dict(
    modalities={"mae": 16, "hubert": 8, "vggish": 4},
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    clip_length=12,
)


def make_batch(batch_size=2, clip_length=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = {
        name: torch.randn(batch_size, clip_length, size, generator=generator)
        for name, size in TINY_TMF["modalities"].items()
    }
    attention_mask = torch.ones(batch_size, clip_length, dtype=torch.long)
    attention_mask[0, 8:] = 0
    return features, attention_mask


def test_config_defaults_are_the_papers():
    config = TMFConfig()
    assert config.modalities == {"mae": 768, "hubert": 768, "vggish": 128}
    assert config.used_modalities == ["mae", "hubert", "vggish"] and config.audio_modalities == ["hubert", "vggish"]
    assert (config.num_hidden_layers, config.dropout, config.clip_length) == (4, 0.3, 100)
    assert config.tasks == ["au", "expr", "va"]
    assert TMFConfig(used_modalities=["vggish", "mae", "hubert"]).used_modalities == ["mae", "hubert", "vggish"]
    with pytest.raises(ValueError, match="subset"):
        TMFConfig(used_modalities=["openface"])
    with pytest.raises(ValueError, match="visual feature"):
        TMFConfig(modalities={"hubert": 768})


def test_per_frame_outputs_and_losses():
    model = TMFForAffect(TMFConfig(**TINY_TMF)).eval()
    features, attention_mask = make_batch()
    au, expr, va = torch.randint(0, 2, (2, 12, 12)).float(), torch.randint(0, 8, (2, 12)), torch.rand(2, 12, 2) * 2 - 1
    outputs = model(features, attention_mask=attention_mask, au_labels=au, expr_labels=expr, va_labels=va)
    assert outputs.au_logits.shape == (2, 12, 12) and outputs.expr_logits.shape == (2, 12, 8)
    assert outputs.va.shape == (2, 12, 2) and outputs.features.shape == (2, 12, 32)
    torch.testing.assert_close(outputs.loss, outputs.au_loss + outputs.expr_loss + outputs.va_loss)
    # Padded frames' labels are ignored: marking them invalid by hand gives the same loss.
    au[0, 8:], expr[0, 8:], va[0, 8:] = -1, -1, -5
    torch.testing.assert_close(
        model(features, attention_mask=attention_mask, au_labels=au, expr_labels=expr, va_labels=va).loss, outputs.loss
    )


def test_padded_frames_do_not_change_real_frames():
    model = TMFForAffect(TMFConfig(**TINY_TMF)).eval()
    features, attention_mask = make_batch()
    changed = {name: value.clone() for name, value in features.items()}
    for value in changed.values():
        value[0, 8:] = torch.randn_like(value[0, 8:]) * 100
    with torch.no_grad():
        before, after = model(features, attention_mask=attention_mask), model(changed, attention_mask=attention_mask)
    for name in ("au_logits", "expr_logits", "va"):
        torch.testing.assert_close(before[name][0, :8], after[name][0, :8], rtol=0, atol=0)
        torch.testing.assert_close(before[name][1], after[name][1], rtol=0, atol=0)


def test_absent_audio_is_masked_out():
    model = TMFForAffect(TMFConfig(**TINY_TMF)).eval()
    features, attention_mask = make_batch()
    absent = {"hubert": torch.zeros(2, 12), "vggish": torch.ones(2, 12)}
    noisy = dict(features, hubert=torch.randn(2, 12, 8))
    with torch.no_grad():
        reference = model(features, attention_mask=attention_mask, modality_mask=absent)
        masked = model(noisy, attention_mask=attention_mask, modality_mask=absent)
        present = model(features, attention_mask=attention_mask)
    torch.testing.assert_close(reference.va, masked.va, rtol=0, atol=0)
    assert not torch.allclose(reference.va, present.va)


def test_visual_only_model_ignores_audio_and_errors_name_missing_features():
    model = TMFForAffect(TMFConfig(**TINY_TMF, used_modalities=["mae"], tasks=["au"])).eval()
    features, _ = make_batch()
    assert model.projection[0].in_features == 16
    assert model({"mae": features["mae"]}).au_logits.shape == (2, 12, 12)
    with pytest.raises(ValueError, match=r"needs the features \['mae'\]"):
        model({"hubert": features["hubert"]})
    with pytest.raises(ValueError, match="at most 12"):
        model({"mae": torch.randn(1, 13, 16)})


def test_save_and_reload_through_auto_model(tmp_path):
    model = TMFForAffect(TMFConfig(**TINY_TMF, backbones={"hubert": {"model": "facebook/hubert-base-ls960"}})).eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_tmf.TMFConfig", "AutoModel": "modeling_tmf.TMFForAffect"}
    assert config["backbones"]["hubert"]["model"] == "facebook/hubert-base-ls960"
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is TMFForAffect
    features, attention_mask = make_batch()
    with torch.no_grad():
        torch.testing.assert_close(
            reloaded(features, attention_mask=attention_mask).va,
            model(features, attention_mask=attention_mask).va,
            rtol=0,
            atol=0,
        )


def test_remote_code_loads_without_the_package(tmp_path, load_with_remote_code):
    model = TMFForAffect(TMFConfig(**TINY_TMF)).eval()
    model.save_pretrained(tmp_path / "model")
    features, attention_mask = make_batch()
    class_name, module, outputs = load_with_remote_code(
        tmp_path / "model", {"features": features, "attention_mask": attention_mask}
    )
    assert class_name == "TMFForAffect" and not module.startswith("modeling_abaw")
    with torch.no_grad():
        torch.testing.assert_close(outputs["va"], model(features, attention_mask=attention_mask).va, rtol=0, atol=0)
