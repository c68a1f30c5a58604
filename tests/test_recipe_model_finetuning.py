"""FaceMAEForAffect fine-tunes with MAE's recipe (facebookresearch/mae `main_finetune.py`, timm's VisionTransformer):
stochastic depth in the encoder layers, new heads initialised with `trunc_normal_(std=2e-5)`, learnable position
embeddings. The references are transformers' own ViTMAELayer and the recipe's numbers."""

import copy

import pytest
import torch
from transformers.models.vit_mae.modeling_vit_mae import ViTMAELayer

from modeling_abaw import FaceMAEConfig, FaceMAEForAffect, FaceMAEForPreTraining, FaceMAEPreTrainingConfig
from modeling_abaw.modeling_face_mae import drop_path


def with_vit_mae_layers(model):
    """A copy of `model` whose encoder layers are transformers' ViTMAELayer (as before drop path), same weights."""
    reference = copy.deepcopy(model)
    for index, layer in enumerate(model.vit.layers):
        reference.vit.layers[index] = ViTMAELayer(model.config)
        reference.vit.layers[index].load_state_dict(layer.state_dict())
    return reference.train(model.training)


def outputs(model, pixel_values):
    torch.manual_seed(1)  # the same drop-path draws for two models
    with torch.no_grad():
        result = model(pixel_values)
    return torch.cat([result.features, result.au_logits, result.expr_logits, result.va], dim=-1)


@pytest.mark.parametrize("training", [True, False])
def test_drop_path_off_gives_the_old_outputs_exactly(tiny_face_mae_kwargs, training):
    torch.manual_seed(0)
    model = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs)).train(training)
    pixel_values = torch.randn(4, 3, 32, 32)
    assert torch.equal(outputs(model, pixel_values), outputs(with_vit_mae_layers(model), pixel_values))


def test_drop_path_changes_training_outputs_only(tiny_face_mae_kwargs):
    torch.manual_seed(0)
    off = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs))
    on = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs, drop_path_rate=0.5))
    on.load_state_dict(off.state_dict())  # same parameter names: checkpoints load either way
    pixel_values = torch.randn(8, 3, 32, 32)
    assert not torch.equal(outputs(on.train(), pixel_values), outputs(off.train(), pixel_values))
    assert torch.equal(outputs(on.eval(), pixel_values), outputs(off.eval(), pixel_values))


def test_drop_path_rate_rises_linearly_over_the_layers(tiny_face_mae_kwargs):
    config = FaceMAEConfig(**{**tiny_face_mae_kwargs, "num_hidden_layers": 5}, drop_path_rate=0.2)
    rates = [layer.drop_path_rate for layer in FaceMAEForAffect(config).vit.layers]
    assert rates == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])


def test_drop_path_drops_whole_samples_and_rescales_the_kept():
    torch.manual_seed(0)
    x = torch.rand(400, 3, 5) + 1
    dropped = drop_path(x, 0.25, training=True)
    kept = (dropped != 0).flatten(1)
    assert (kept.all(1) | ~kept.any(1)).all()  # per sample: all kept or all dropped
    torch.testing.assert_close(dropped[kept.all(1)], x[kept.all(1)] / 0.75)
    assert 0.15 < (~kept.all(1)).float().mean() < 0.35
    assert drop_path(x, 0.25, training=False) is x


def test_drop_path_model_loads_with_remote_code(tiny_face_mae_kwargs, tmp_path, load_with_remote_code):
    model = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs, drop_path_rate=0.3)).eval()
    model.save_pretrained(tmp_path / "model")
    inputs = {"pixel_values": torch.randn(2, 3, 32, 32)}
    class_name, module, remote_outputs = load_with_remote_code(tmp_path / "model", inputs)
    assert class_name == "FaceMAEForAffect" and not module.startswith("modeling_abaw")
    with torch.no_grad():
        torch.testing.assert_close(remote_outputs["au_logits"], model(**inputs).au_logits, rtol=0, atol=0)


def test_new_heads_get_maes_init_and_loaded_weights_stay(tiny_face_mae_kwargs, tmp_path):
    torch.manual_seed(0)
    pretrained = FaceMAEForPreTraining(FaceMAEPreTrainingConfig(**tiny_face_mae_kwargs))
    pretrained.save_pretrained(tmp_path / "pretrained")
    model = FaceMAEForAffect.from_pretrained(tmp_path / "pretrained")
    heads = model.affect_heads.heads.values()
    weights = torch.cat([head.weight.flatten() for head in heads])  # 22 x 32 values
    assert 1.6e-5 < weights.std().item() < 2.4e-5 and weights.abs().max() < 2 * 2e-5 * 5
    assert all((head.bias == 0).all() for head in heads)
    for name, parameter in pretrained.vit.named_parameters():
        if not name.startswith("layernorm."):  # the pre-training encoder's final norm, left out by fine-tuning
            assert torch.equal(model.vit.get_parameter(name), parameter), name
    # Heads loaded from a checkpoint keep their weights.
    model.affect_heads.heads["va"].weight.data.fill_(0.25)
    model.save_pretrained(tmp_path / "finetuned")
    assert (FaceMAEForAffect.from_pretrained(tmp_path / "finetuned").affect_heads.heads["va"].weight == 0.25).all()


def test_head_initializer_range_is_the_std(tiny_face_mae_kwargs):
    torch.manual_seed(0)
    model = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs, head_initializer_range=0.1))
    weights = torch.cat([head.weight.flatten() for head in model.affect_heads.heads.values()])
    assert 0.08 < weights.std().item() < 0.12


@pytest.mark.parametrize("learnable", [True, False])
def test_position_embeddings_learn_in_fine_tuning_if_configured(tiny_face_mae_kwargs, tmp_path, learnable):
    FaceMAEForPreTraining(FaceMAEPreTrainingConfig(**tiny_face_mae_kwargs)).save_pretrained(tmp_path / "pretrained")
    fresh = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs, learnable_position_embeddings=learnable))
    loaded = FaceMAEForAffect.from_pretrained(tmp_path / "pretrained", learnable_position_embeddings=learnable)
    for model in (fresh, loaded):
        position_embeddings = model.vit.embeddings.position_embeddings
        assert position_embeddings.requires_grad is learnable
        model(torch.randn(2, 3, 32, 32), va_labels=torch.rand(2, 2) * 2 - 1).loss.backward()
        assert (position_embeddings.grad is not None) is learnable


def test_learnt_position_embeddings_survive_reloading(tiny_face_mae_kwargs, tmp_path):
    model = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs))
    model.vit.embeddings.position_embeddings.data.add_(1.0)  # no longer the sin-cos table
    model.save_pretrained(tmp_path)
    reloaded = FaceMAEForAffect.from_pretrained(tmp_path)
    assert torch.equal(reloaded.vit.embeddings.position_embeddings, model.vit.embeddings.position_embeddings)
    assert reloaded.vit.embeddings.position_embeddings.requires_grad


def test_pretraining_keeps_its_sin_cos_position_embeddings_fixed_after_loading(tiny_face_mae_kwargs, tmp_path):
    """transformers' loading made every loaded float parameter trainable, MAE's fixed embeddings included."""
    FaceMAEForPreTraining(FaceMAEPreTrainingConfig(**tiny_face_mae_kwargs)).save_pretrained(tmp_path)
    model, _ = FaceMAEForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert not model.vit.embeddings.position_embeddings.requires_grad
    assert not model.decoder.decoder_pos_embed.requires_grad
    assert model.vit.embeddings.cls_token.requires_grad
