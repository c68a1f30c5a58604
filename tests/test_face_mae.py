import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoImageProcessor, AutoModel, ViTMAEConfig, ViTMAEForPreTraining, ViTMAEModel

from modeling_abaw import FaceMAEConfig, FaceMAEForAffect, FaceMAEForPreTraining, FaceMAEPreTrainingConfig
from modeling_abaw.losses import multiclass_loss, multilabel_loss, regression_loss
from modeling_abaw.tasks import AU, EXPR, VA


def numpy_ccc(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_config_defaults_are_the_papers():
    config = FaceMAEConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 12, 12)
    assert (config.image_size, config.patch_size, config.mask_ratio) == (224, 16, 0.75)
    assert (config.decoder_hidden_size, config.decoder_num_hidden_layers) == (512, 8)
    assert config.layer_norm_eps == 1e-6 and config.norm_pix_loss is False
    assert config.tasks == ["au", "expr", "va"]
    assert config.label_names == {"au": list(AU.labels), "expr": list(EXPR.labels), "va": list(VA.labels)}
    assert config.au_class_weight == [1.0] * 12 and config.expr_class_weight == [1.0] * 8
    assert config.au_pos_weight == [1.0] * 12  # the option beyond the paper, off
    assert config.smoothing_policy["expr"] == {"filter": "gaussian", "sigma": 25.0}
    assert FaceMAEConfig(tasks=["va"]).smoothing_policy.keys() == {"au", "expr", "va"}


def test_config_validates_tasks_and_weights():
    assert FaceMAEConfig(tasks=["va", "au"]).tasks == ["au", "va"]
    with pytest.raises(ValueError, match="Unknown task 'pose'"):
        FaceMAEConfig(tasks=["pose"])
    with pytest.raises(ValueError, match="au_pos_weight needs 12"):
        FaceMAEConfig(au_pos_weight=[1.0, 2.0])
    assert FaceMAEConfig(tasks=["va"]).label_names == {"va": ["valence", "arousal"]}


def test_pretraining_matches_vit_mae(tiny_face_mae_kwargs, tmp_path):
    torch.manual_seed(0)
    reference = ViTMAEForPreTraining(ViTMAEConfig(**tiny_face_mae_kwargs, layer_norm_eps=1e-6)).eval()
    reference.save_pretrained(tmp_path / "vit_mae")
    model = FaceMAEForPreTraining.from_pretrained(tmp_path / "vit_mae").eval()
    pixel_values, noise = torch.randn(3, 3, 32, 32), torch.rand(3, 16)
    expected, actual = reference(pixel_values, noise=noise), model(pixel_values, noise=noise)
    assert torch.equal(expected.logits, actual.logits)
    assert torch.equal(expected.loss, actual.loss)
    assert torch.equal(expected.mask, actual.mask)
    # 75% of the 16 patches are masked.
    assert actual.mask.sum(dim=1).tolist() == [12.0] * 3


def test_affect_model_pools_like_mae_finetuning(tiny_face_mae_kwargs):
    torch.manual_seed(0)
    model = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs)).eval()
    # Reference: transformers' ViTMAEModel with no masking and noise that keeps the patch order.
    encoder = ViTMAEModel(ViTMAEConfig(**tiny_face_mae_kwargs, layer_norm_eps=1e-6, mask_ratio=0.0)).eval()
    encoder.load_state_dict(model.vit.state_dict(), strict=False)
    pixel_values = torch.randn(2, 3, 32, 32)
    reference = encoder(pixel_values, noise=torch.arange(16.0).expand(2, 16), output_hidden_states=True)
    last_layer = reference.hidden_states[-1]
    expected = F.layer_norm(last_layer[:, 1:].mean(1), (32,), model.fc_norm.weight, model.fc_norm.bias, 1e-6)
    outputs = model(pixel_values)
    torch.testing.assert_close(outputs.features, expected)
    assert outputs.au_logits.shape == (2, 12) and outputs.expr_logits.shape == (2, 8) and outputs.va.shape == (2, 2)
    assert outputs.va.abs().max() <= 1


def test_affect_model_is_deterministic_and_frame_independent(tiny_face_mae_kwargs):
    model = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs)).eval()
    pixel_values = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        first, second = model(pixel_values), model(pixel_values)
        alone = model(pixel_values[1:2])
    assert torch.equal(first.features, second.features)
    torch.testing.assert_close(first.au_logits[1:2], alone.au_logits)


def test_affect_model_heads_follow_tasks(tiny_face_mae_kwargs):
    model = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs, tasks=["expr"])).eval()
    outputs = model(torch.randn(2, 3, 32, 32), expr_labels=torch.tensor([1, 2]))
    assert outputs.au_logits is None and outputs.va is None and outputs.expr_logits.shape == (2, 8)
    assert torch.equal(outputs.loss, outputs.expr_loss)


def test_au_loss_matches_weighted_bce_and_ignores_missing_labels():
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 12), torch.randint(0, 2, (6, 12)).float()
    labels[0, :5] = -1
    labels[3] = -1
    class_weight = torch.rand(12) * 3
    valid = labels >= 0
    expected = torch.stack(
        [
            F.binary_cross_entropy_with_logits(logits[i, j], labels[i, j], weight=class_weight[j])
            for i, j in valid.nonzero().tolist()
        ]
    ).mean()
    torch.testing.assert_close(multilabel_loss(AU, logits, labels, class_weight), expected)
    # Logits of unlabelled elements do not change the loss.
    changed = logits.clone()
    changed[~valid] += 5
    torch.testing.assert_close(multilabel_loss(AU, changed, labels, class_weight), expected)


def test_expr_loss_matches_weighted_cross_entropy():
    torch.manual_seed(1)
    logits, labels = torch.randn(10, 8), torch.randint(0, 8, (10,))
    labels[[2, 7]] = -1
    weight = torch.rand(8) + 0.5
    keep = labels >= 0
    expected = F.cross_entropy(logits[keep], labels[keep], weight=weight)
    torch.testing.assert_close(multiclass_loss(EXPR, logits, labels, weight), expected)


def test_va_loss_is_one_minus_ccc_per_dimension():
    rng = np.random.default_rng(0)
    prediction, labels = rng.uniform(-1, 1, (20, 2)), rng.uniform(-1, 1, (20, 2))
    labels[:4, 0] = -5
    labels[10:, 1] = -5
    expected = (1 - numpy_ccc(prediction[4:, 0], labels[4:, 0])) + (1 - numpy_ccc(prediction[:10, 1], labels[:10, 1]))
    actual = regression_loss(
        VA, torch.tensor(prediction, dtype=torch.float32), torch.tensor(labels, dtype=torch.float32)
    )
    assert actual.item() == pytest.approx(expected, rel=1e-5)


def test_losses_add_up_and_unlabelled_batches_still_backpropagate(tiny_face_mae_kwargs):
    model = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs))
    pixel_values = torch.randn(4, 3, 32, 32)
    au, expr, va = torch.randint(0, 2, (4, 12)).float(), torch.randint(0, 8, (4,)), torch.rand(4, 2) * 2 - 1
    outputs = model(pixel_values, au_labels=au, expr_labels=expr, va_labels=va)
    torch.testing.assert_close(outputs.loss, outputs.au_loss + outputs.expr_loss + outputs.va_loss)
    empty = model(pixel_values, au_labels=torch.full((4, 12), -1.0), expr_labels=torch.full((4,), -1))
    assert empty.loss.item() == 0.0
    empty.loss.backward()
    assert model.affect_heads.heads["au"].weight.grad is not None


def test_padding_mask_marks_labels_invalid(tiny_face_mae_kwargs):
    heads = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs)).affect_heads
    features = torch.randn(2, 5, 32)
    labels = torch.rand(2, 5, 2) * 2 - 1
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    masked = heads(features, {"va_labels": labels}, valid_mask=mask)
    padded_labels = labels.clone()
    padded_labels[0, 3:] = -5
    torch.testing.assert_close(masked.loss, heads(features, {"va_labels": padded_labels}).loss)


@pytest.mark.parametrize("model_class", [FaceMAEForPreTraining, FaceMAEForAffect])
def test_save_and_reload_through_auto_classes(model_class, tiny_face_mae_kwargs, tmp_path):
    config_class = FaceMAEPreTrainingConfig if model_class is FaceMAEForPreTraining else FaceMAEConfig
    model = model_class(config_class(**tiny_face_mae_kwargs)).eval()
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == ["model.safetensors"]
    assert not list(tmp_path.glob("*.bin"))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == f"modeling_face_mae.{model_class.__name__}"
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is model_class
    pixel_values, noise = torch.randn(2, 3, 32, 32), torch.rand(2, 16)
    kwargs = {"noise": noise} if model_class is FaceMAEForPreTraining else {}
    for name, value in model(pixel_values, **kwargs).items():
        torch.testing.assert_close(reloaded(pixel_values, **kwargs)[name], value, rtol=0, atol=0)
    processor = AutoImageProcessor.from_pretrained(tmp_path)
    assert processor.size == {"height": 32, "width": 32} and list(processor.image_mean) == [0.485, 0.456, 0.406]


def test_affect_model_takes_the_encoder_of_a_pretraining_checkpoint(tiny_face_mae_kwargs, tmp_path):
    pretrained = FaceMAEForPreTraining(FaceMAEPreTrainingConfig(**tiny_face_mae_kwargs))
    pretrained.save_pretrained(tmp_path)
    model, info = FaceMAEForAffect.from_pretrained(tmp_path, output_loading_info=True)
    assert torch.equal(model.vit.layers[1].mlp.fc2.weight, pretrained.vit.layers[1].mlp.fc2.weight)
    assert torch.equal(model.vit.embeddings.cls_token, pretrained.vit.embeddings.cls_token)
    new = set(info["missing_keys"])
    assert new == {
        f"{name}.{p}"
        for name in ["fc_norm", *(f"affect_heads.heads.{t}" for t in "au expr va".split())]
        for p in ("weight", "bias")
    }
    assert all(key.startswith(("decoder.", "vit.layernorm.")) for key in info["unexpected_keys"])


def test_loss_weights_and_tasks_survive_loading(tiny_face_mae_kwargs, tmp_path):
    weights = dict(au_class_weight=[float(i + 1) for i in range(12)], expr_class_weight=[0.5] * 8)
    FaceMAEForPreTraining(FaceMAEPreTrainingConfig(**tiny_face_mae_kwargs, **weights)).save_pretrained(tmp_path / "a")
    model = FaceMAEForAffect.from_pretrained(tmp_path / "a", tasks=["au"])
    assert list(model.affect_heads.heads) == ["au"] and model.config.label_names == {"au": list(AU.labels)}
    pixel_values, labels = torch.randn(3, 3, 32, 32), torch.randint(0, 2, (3, 12)).float()
    outputs = model(pixel_values, au_labels=labels)
    expected = multilabel_loss(AU, outputs.au_logits, labels, torch.tensor(weights["au_class_weight"]))
    torch.testing.assert_close(outputs.loss, expected)
    model.save_pretrained(tmp_path / "b")
    assert AutoModel.from_pretrained(tmp_path / "b").config.tasks == ["au"]


def test_dtype_is_kept_on_reload_unless_asked(tiny_face_mae_kwargs, tmp_path):
    model = FaceMAEForAffect(FaceMAEConfig(**tiny_face_mae_kwargs)).to(torch.bfloat16)
    model.save_pretrained(tmp_path)
    assert AutoModel.from_pretrained(tmp_path).dtype == torch.bfloat16
    as_float = AutoModel.from_pretrained(tmp_path, dtype=torch.float32)
    assert as_float.dtype == torch.float32
    pixel_values = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(as_float(pixel_values).va, model.float()(pixel_values).va, rtol=0, atol=0)


@pytest.mark.parametrize("model_class", [FaceMAEForPreTraining, FaceMAEForAffect])
def test_remote_code_loads_without_the_package(model_class, tiny_face_mae_kwargs, tmp_path, load_with_remote_code):
    config_class = FaceMAEPreTrainingConfig if model_class is FaceMAEForPreTraining else FaceMAEConfig
    model = model_class(config_class(**tiny_face_mae_kwargs)).eval()
    model.save_pretrained(tmp_path / "model")
    inputs = {"pixel_values": torch.randn(2, 3, 32, 32)}
    if model_class is FaceMAEForPreTraining:
        inputs["noise"] = torch.rand(2, 16)
    class_name, module, remote_outputs = load_with_remote_code(tmp_path / "model", inputs)
    assert class_name == model_class.__name__ and not module.startswith("modeling_abaw")
    with torch.no_grad():
        local_outputs = model(**inputs)
    assert remote_outputs.keys() == {k for k, v in local_outputs.items() if isinstance(v, torch.Tensor)}
    for name, value in remote_outputs.items():
        torch.testing.assert_close(value, local_outputs[name], rtol=0, atol=0)


def _sincos_reference(num_patches: int, dim: int) -> np.ndarray:
    """MAE's get_2d_sincos_pos_embed (facebookresearch/mae util/pos_embed.py), written out with numpy: the first half
    of the channels encodes the patch column, the second half its row; a zero row for the cls token."""
    grid = int(num_patches**0.5)
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim // 4))
    rows, columns = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")

    def encode(positions):
        angles = positions.reshape(-1)[:, None] * omega
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    return np.concatenate([np.zeros((1, dim)), np.concatenate([encode(columns), encode(rows)], axis=1)])


@pytest.mark.parametrize("model_class", [FaceMAEForPreTraining, FaceMAEForAffect])
def test_models_built_from_scratch_have_mae_sincos_position_embeddings(model_class, tiny_face_mae_kwargs, tmp_path):
    # transformers 5.24's ViT-MAE init left them at zero, so pre-training from scratch reconstructed flat colours.
    model = model_class(FaceMAEPreTrainingConfig(**tiny_face_mae_kwargs))
    encoder = model.vit.embeddings.position_embeddings[0].detach().double().numpy()
    np.testing.assert_allclose(encoder, _sincos_reference(len(encoder) - 1, encoder.shape[-1]), atol=1e-6)
    if model_class is FaceMAEForPreTraining:
        decoder = model.decoder.decoder_pos_embed[0].detach().double().numpy()
        np.testing.assert_allclose(decoder, _sincos_reference(len(decoder) - 1, decoder.shape[-1]), atol=1e-6)
    # Loaded position embeddings are the checkpoint's, not re-initialised.
    with torch.no_grad():
        model.vit.embeddings.position_embeddings.add_(1.0)
    model.save_pretrained(tmp_path)
    reloaded = model_class.from_pretrained(tmp_path)
    assert torch.equal(reloaded.vit.embeddings.position_embeddings, model.vit.embeddings.position_embeddings)
