"""modeling_abaw.conversion.mae: facebookresearch/mae checkpoints -> FaceMAE folders.

The checkpoints are built from random tensors with MAE's real key names and shapes (tiny sizes); the converted
models are checked against a ViT/MAE forward written here directly from those raw tensors with torch.nn.functional
(timm's Block and MAE's random_masking / decoder / loss), so the check does not depend on the converter's mapping.
"""

import argparse
import json

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoModelForPreTraining

from modeling_abaw import FaceMAEForAffect, FaceMAEForPreTraining
from modeling_abaw.conversion import mae
from modeling_abaw.errors import InputError

# Tiny sizes: 128-d encoder (2 heads of 64 by the standard rule), 2 blocks, 8x8 patches, 32x32 images (4x4 grid);
# 32-d decoder with MAE's 16 heads.
DIM, DEPTH, MLP, PATCH, IMAGE, HEADS = 128, 2, 256, 8, 32, 2
DEC_DIM, DEC_DEPTH, DEC_MLP, DEC_HEADS = 32, 2, 64, 16
EPS = 1e-6


# ------------------------------------------------------------------------------------------- checkpoint builders
def _block(prefix, dim, mlp, generator, qkv_bias=True):
    def rand(*shape, scale=0.2):
        return torch.randn(*shape, generator=generator) * scale

    tensors = {
        "norm1.weight": 1 + rand(dim),
        "norm1.bias": rand(dim),
        "attn.qkv.weight": rand(3 * dim, dim),
        "attn.qkv.bias": rand(3 * dim),
        "attn.proj.weight": rand(dim, dim),
        "attn.proj.bias": rand(dim),
        "norm2.weight": 1 + rand(dim),
        "norm2.bias": rand(dim),
        "mlp.fc1.weight": rand(mlp, dim),
        "mlp.fc1.bias": rand(mlp),
        "mlp.fc2.weight": rand(dim, mlp),
        "mlp.fc2.bias": rand(dim),
    }
    if not qkv_bias:
        del tensors["attn.qkv.bias"]
    return {prefix + name: tensor for name, tensor in tensors.items()}


def make_encoder(seed=0, dim=DIM, depth=DEPTH, mlp=MLP, patch=PATCH, image=IMAGE, qkv_bias=True):
    """An MAE encoder as in `mae_pretrain_vit_*.pth`: the ViT with its final norm."""
    g = torch.Generator().manual_seed(seed)
    grid = image // patch
    sd = {
        "cls_token": torch.randn(1, 1, dim, generator=g) * 0.2,
        "pos_embed": torch.randn(1, grid * grid + 1, dim, generator=g) * 0.2,
        "patch_embed.proj.weight": torch.randn(dim, 3, patch, patch, generator=g) * 0.1,
        "patch_embed.proj.bias": torch.randn(dim, generator=g) * 0.1,
    }
    for i in range(depth):
        sd.update(_block(f"blocks.{i}.", dim, mlp, g, qkv_bias))
    sd["norm.weight"] = 1 + torch.randn(dim, generator=g) * 0.2
    sd["norm.bias"] = torch.randn(dim, generator=g) * 0.2
    return sd


def make_pretraining(seed=0, image=IMAGE, patch=PATCH, qkv_bias=True):
    """A full MAE checkpoint (encoder + decoder), as `mae_visualize_vit_*.pth` / MAE-Face / FMAE pre-training."""
    sd = make_encoder(seed, image=image, patch=patch, qkv_bias=qkv_bias)
    g = torch.Generator().manual_seed(seed + 100)
    grid = image // patch
    sd.update(
        {
            "mask_token": torch.randn(1, 1, DEC_DIM, generator=g) * 0.2,
            "decoder_pos_embed": torch.randn(1, grid * grid + 1, DEC_DIM, generator=g) * 0.2,
            "decoder_embed.weight": torch.randn(DEC_DIM, DIM, generator=g) * 0.1,
            "decoder_embed.bias": torch.randn(DEC_DIM, generator=g) * 0.1,
            "decoder_norm.weight": 1 + torch.randn(DEC_DIM, generator=g) * 0.2,
            "decoder_norm.bias": torch.randn(DEC_DIM, generator=g) * 0.2,
            "decoder_pred.weight": torch.randn(patch * patch * 3, DEC_DIM, generator=g) * 0.2,
            "decoder_pred.bias": torch.randn(patch * patch * 3, generator=g) * 0.2,
        }
    )
    for i in range(DEC_DEPTH):
        sd.update(_block(f"decoder_blocks.{i}.", DEC_DIM, DEC_MLP, g, qkv_bias))
    return sd


def make_finetuned(num_outputs, seed=0, image=IMAGE):
    """A fine-tuned MAE ViT with global pooling: no final norm, fc_norm + head (`mae_finetuned_vit_*.pth`)."""
    sd = make_encoder(seed, image=image)
    del sd["norm.weight"], sd["norm.bias"]
    g = torch.Generator().manual_seed(seed + 200)
    sd["fc_norm.weight"] = 1 + torch.randn(DIM, generator=g) * 0.2
    sd["fc_norm.bias"] = torch.randn(DIM, generator=g) * 0.2
    sd["head.weight"] = torch.randn(num_outputs, DIM, generator=g) * 0.2
    sd["head.bias"] = torch.randn(num_outputs, generator=g) * 0.2
    return sd


# --------------------------------------------------------------------------------- reference forward (timm / MAE)
def ref_block(x, sd, prefix, heads):
    batch, tokens, dim = x.shape
    h = F.layer_norm(x, (dim,), sd[prefix + "norm1.weight"], sd[prefix + "norm1.bias"], EPS)
    qkv = F.linear(h, sd[prefix + "attn.qkv.weight"], sd.get(prefix + "attn.qkv.bias"))
    qkv = qkv.reshape(batch, tokens, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    attn = ((q @ k.transpose(-2, -1)) * (dim // heads) ** -0.5).softmax(dim=-1)
    out = (attn @ v).transpose(1, 2).reshape(batch, tokens, dim)
    x = x + F.linear(out, sd[prefix + "attn.proj.weight"], sd[prefix + "attn.proj.bias"])
    h = F.layer_norm(x, (dim,), sd[prefix + "norm2.weight"], sd[prefix + "norm2.bias"], EPS)
    h = F.linear(F.gelu(F.linear(h, sd[prefix + "mlp.fc1.weight"], sd[prefix + "mlp.fc1.bias"])),
                 sd[prefix + "mlp.fc2.weight"], sd[prefix + "mlp.fc2.bias"])  # fmt: skip
    return x + h


def ref_patch_tokens(pixel_values, sd, pos_embed):
    w = sd["patch_embed.proj.weight"]
    x = F.conv2d(pixel_values, w, sd["patch_embed.proj.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
    return x + pos_embed[:, 1:]


def ref_affect(pixel_values, sd, pos_embed=None, fc_norm=None, heads=HEADS):
    """MAE fine-tuning forward with global pooling: all patches, mean of patch tokens, fc_norm, head."""
    pos_embed = sd["pos_embed"] if pos_embed is None else pos_embed
    x = ref_patch_tokens(pixel_values, sd, pos_embed)
    cls = (sd["cls_token"] + pos_embed[:, :1]).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1)
    for i in range(DEPTH):
        x = ref_block(x, sd, f"blocks.{i}.", heads)
    weight, bias = fc_norm if fc_norm is not None else (sd["fc_norm.weight"], sd["fc_norm.bias"])
    features = F.layer_norm(x[:, 1:].mean(dim=1), (x.shape[-1],), weight, bias, EPS)
    logits = F.linear(features, sd["head.weight"], sd["head.bias"]) if "head.weight" in sd else None
    return features, logits


def ref_pretraining(pixel_values, sd, noise, mask_ratio=0.75, norm_pix_loss=False):
    """MAE's forward_encoder (random_masking with the given noise), forward_decoder and forward_loss."""
    x = ref_patch_tokens(pixel_values, sd, sd["pos_embed"])
    batch, length, dim = x.shape
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    x = torch.gather(x, 1, ids_shuffle[:, :len_keep].unsqueeze(-1).repeat(1, 1, dim))
    mask = torch.ones(batch, length)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    cls = (sd["cls_token"] + sd["pos_embed"][:, :1]).expand(batch, -1, -1)
    x = torch.cat([cls, x], dim=1)
    for i in range(DEPTH):
        x = ref_block(x, sd, f"blocks.{i}.", HEADS)
    latent = F.layer_norm(x, (dim,), sd["norm.weight"], sd["norm.bias"], EPS)

    x = F.linear(latent, sd["decoder_embed.weight"], sd["decoder_embed.bias"])
    mask_tokens = sd["mask_token"].repeat(batch, ids_restore.shape[1] + 1 - x.shape[1], 1)
    x_ = torch.cat([x[:, 1:], mask_tokens], dim=1)
    x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
    x = torch.cat([x[:, :1], x_], dim=1) + sd["decoder_pos_embed"]
    for i in range(DEC_DEPTH):
        x = ref_block(x, sd, f"decoder_blocks.{i}.", DEC_HEADS)
    x = F.layer_norm(x, (x.shape[-1],), sd["decoder_norm.weight"], sd["decoder_norm.bias"], EPS)
    pred = F.linear(x, sd["decoder_pred.weight"], sd["decoder_pred.bias"])[:, 1:]

    p = sd["patch_embed.proj.weight"].shape[-1]
    h = w = pixel_values.shape[2] // p
    target = pixel_values.reshape(batch, 3, h, p, w, p)
    target = torch.einsum("nchpwq->nhwpqc", target).reshape(batch, h * w, p * p * 3)
    if norm_pix_loss:
        mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.0e-6) ** 0.5
    loss = ((pred - target) ** 2).mean(dim=-1)
    loss = (loss * mask).sum() / mask.sum()
    return latent, pred, mask, loss


def ref_interpolate(pos_embed, new_grid):
    """MAE's util/pos_embed.py interpolate_pos_embed, written out."""
    extra, tokens = pos_embed[:, :1], pos_embed[:, 1:]
    old = int(tokens.shape[1] ** 0.5)
    tokens = tokens.reshape(-1, old, old, tokens.shape[-1]).permute(0, 3, 1, 2)
    tokens = F.interpolate(tokens, size=(new_grid, new_grid), mode="bicubic", align_corners=False)
    return torch.cat([extra, tokens.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)


def run_main(tmp_path, checkpoint_obj, *args, name="ckpt.pth", output="out"):
    path = tmp_path / name
    torch.save(checkpoint_obj, path)
    code = mae.main(["--checkpoint", str(path), "--output", str(tmp_path / output), *args])
    return code, path, tmp_path / output


# ------------------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("num_outputs, task", [(12, "au"), (8, "expr"), (2, "va")])
def test_finetuned_head_goes_to_the_task_of_its_size_and_matches_reference(num_outputs, task):
    sd = make_finetuned(num_outputs)
    result = mae.convert({"model": sd})
    model = result.model
    assert isinstance(model, FaceMAEForAffect) and model.config.tasks == [task]
    config = model.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (DIM, DEPTH, HEADS)
    assert (config.intermediate_size, config.image_size, config.patch_size) == (MLP, IMAGE, PATCH)
    assert config.layer_norm_eps == 1e-6 and config.hidden_act == "gelu"
    assert result.dropped == {} and result.new == []
    assert result.converted["blocks.1.attn.qkv.weight"] == [
        f"vit.layers.1.attention.{n}_proj.weight" for n in ("q", "k", "v")
    ]
    assert result.converted["head.weight"] == [f"affect_heads.heads.{task}.weight"]

    pixel_values = torch.randn(3, 3, IMAGE, IMAGE)
    features, logits = ref_affect(pixel_values, sd)
    with torch.no_grad():
        outputs = model(pixel_values)
    torch.testing.assert_close(outputs.features, features, rtol=1e-5, atol=2e-5)
    actual = {"au": outputs.au_logits, "expr": outputs.expr_logits, "va": outputs.va}[task]
    expected = torch.tanh(logits) if task == "va" else logits
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_pretraining_checkpoint_matches_mae_reference(norm_pix_loss):
    sd = make_pretraining()
    result = mae.convert(sd, norm_pix_loss=norm_pix_loss)
    model = result.model
    assert isinstance(model, FaceMAEForPreTraining)
    config = model.config
    assert (config.decoder_hidden_size, config.decoder_num_hidden_layers) == (DEC_DIM, DEC_DEPTH)
    assert (config.decoder_num_attention_heads, config.decoder_intermediate_size) == (DEC_HEADS, DEC_MLP)
    assert config.norm_pix_loss is norm_pix_loss and config.tasks == ["au", "expr", "va"]
    assert result.dropped == {} and result.new == [] and len(result.converted) == len(sd)

    torch.manual_seed(1)
    pixel_values, noise = torch.randn(2, 3, IMAGE, IMAGE), torch.rand(2, (IMAGE // PATCH) ** 2)
    latent, pred, mask, loss = ref_pretraining(pixel_values, sd, noise, norm_pix_loss=norm_pix_loss)
    with torch.no_grad():
        encoded = model.vit(pixel_values, noise=noise)
        outputs = model(pixel_values, noise=noise)
    torch.testing.assert_close(encoded.last_hidden_state, latent, rtol=1e-5, atol=2e-5)
    assert torch.equal(outputs.mask, mask)
    torch.testing.assert_close(outputs.logits, pred, rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(outputs.loss, loss, rtol=1e-5, atol=1e-5)


def test_encoder_only_checkpoint_drops_norm_and_adds_new_heads(capsys, tmp_path):
    sd = make_encoder()
    code, _, out = run_main(tmp_path, {"model": sd}, "--task", "va")
    assert code == 0
    printed = capsys.readouterr().out
    assert "FaceMAEForAffect" in printed and "dropped (2): norm.weight, norm.bias" in printed
    assert "new, initialised (4): affect_heads.heads.va.bias, affect_heads.heads.va.weight, fc_norm.bias" in printed

    model = AutoModel.from_pretrained(out).eval()
    assert isinstance(model, FaceMAEForAffect) and model.config.tasks == ["va"]
    # The new fc_norm starts as the identity layer norm (as in MAE fine-tuning); the encoder is the checkpoint's.
    pixel_values = torch.randn(2, 3, IMAGE, IMAGE)
    features, _ = ref_affect(pixel_values, sd, fc_norm=(torch.ones(DIM), torch.zeros(DIM)))
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values).features, features, rtol=1e-5, atol=2e-5)
    # Without --task: all three heads, seeded so two conversions agree.
    first, second = mae.convert(sd), mae.convert(sd)
    assert first.model.config.tasks == ["au", "expr", "va"]
    assert sorted(first.dropped) == ["norm.bias", "norm.weight"]
    assert torch.equal(first.model.affect_heads.heads.au.weight, second.model.affect_heads.heads.au.weight)


@pytest.mark.parametrize("kind", ["affect", "pretraining"])
def test_cli_output_folder_reloads_with_auto_model(kind, tmp_path, capsys):
    sd = make_finetuned(8) if kind == "affect" else make_pretraining()
    # Training checkpoints also carry the run's argparse Namespace and optimizer state: still weights-only loadable.
    checkpoint = {"model": sd, "epoch": 7, "args": argparse.Namespace(lr=1e-3, model="vit_base"), "optimizer": {}}
    code, _, out = run_main(tmp_path, checkpoint)
    assert code == 0
    printed = capsys.readouterr().out
    expected_class = FaceMAEForAffect if kind == "affect" else FaceMAEForPreTraining
    assert expected_class.__name__ in printed and f"converted: {len(sd)} checkpoint tensors" in printed

    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "modeling_face_mae.py"} <= files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pth", "out"]  # the staging folder is gone
    config = json.loads((out / "config.json").read_text())
    assert "AutoModel" in config["auto_map"] and config["layer_norm_eps"] == 1e-6
    processor = json.loads((out / "preprocessor_config.json").read_text())
    assert processor["size"] == {"height": IMAGE, "width": IMAGE}

    converted = mae.convert_mae_checkpoint(sd)
    reloaded = AutoModel.from_pretrained(out).eval()
    assert type(reloaded) is expected_class
    pixel_values = torch.randn(2, 3, IMAGE, IMAGE)
    with torch.no_grad():
        if kind == "affect":
            assert reloaded.config.tasks == ["expr"]
            assert torch.equal(reloaded(pixel_values).expr_logits, converted(pixel_values).expr_logits)
        else:
            assert type(AutoModelForPreTraining.from_pretrained(out)) is FaceMAEForPreTraining
            noise = torch.rand(2, (IMAGE // PATCH) ** 2)
            expected, actual = converted(pixel_values, noise=noise), reloaded(pixel_values, noise=noise)
            assert torch.equal(expected.logits, actual.logits) and torch.equal(expected.loss, actual.loss)
    for name, tensor in converted.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name


def test_image_size_interpolates_position_embeddings():
    new_image, new_grid = 48, 6
    sd = make_finetuned(12)
    result = mae.convert(sd, image_size=new_image)
    model = result.model
    assert model.config.image_size == new_image and any("4x4 to 6x6" in note for note in result.notes)
    pos_embed = ref_interpolate(sd["pos_embed"], new_grid)
    torch.testing.assert_close(model.vit.embeddings.position_embeddings.detach(), pos_embed)
    pixel_values = torch.randn(2, 3, new_image, new_image)
    _, logits = ref_affect(pixel_values, sd, pos_embed=pos_embed)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values).au_logits, logits, rtol=1e-5, atol=2e-5)

    pretraining = mae.convert_mae_checkpoint(make_pretraining(), image_size=new_image)
    assert pretraining.decoder.decoder_pos_embed.shape == (1, new_grid**2 + 1, DEC_DIM)
    torch.testing.assert_close(
        pretraining.decoder.decoder_pos_embed.detach(), ref_interpolate(make_pretraining()["decoder_pos_embed"], 6)
    )
    with torch.no_grad():
        outputs = pretraining(pixel_values)
    assert outputs.logits.shape == (2, new_grid**2, PATCH * PATCH * 3) and torch.isfinite(outputs.loss)

    with pytest.raises(InputError, match="--image-size 50 is not a positive multiple"):
        mae.convert(sd, image_size=50)


def test_checkpoint_without_qkv_bias():
    sd = make_finetuned(2)
    for i in range(DEPTH):
        del sd[f"blocks.{i}.attn.qkv.bias"]
    model = mae.convert_mae_checkpoint(sd)
    assert model.config.qkv_bias is False
    pixel_values = torch.randn(2, 3, IMAGE, IMAGE)
    _, logits = ref_affect(pixel_values, sd)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values).va, torch.tanh(logits), rtol=1e-5, atol=2e-5)


def test_missing_and_unexpected_tensors_are_errors(tmp_path, capsys):
    sd = make_pretraining()
    del sd["blocks.1.mlp.fc2.bias"]
    with pytest.raises(InputError, match=r"missing 1 tensor\(s\): blocks.1.mlp.fc2.bias"):
        mae.convert(sd)

    sd = make_finetuned(8)
    sd["dist_token"] = torch.zeros(1, 1, DIM)
    with pytest.raises(InputError, match=r"unexpected 1 tensor\(s\): dist_token"):
        mae.convert(sd)

    sd = make_pretraining()
    sd["decoder_blocks.1.mlp.fc1.weight"] = torch.zeros(DEC_MLP + 1, DEC_DIM)
    with pytest.raises(InputError, match=r"shapes do not fit.*decoder_blocks.1.mlp.fc1.weight \(65, 32\)"):
        mae.convert(sd)

    # Through the CLI: one line naming the file, exit code 2, nothing written.
    sd = make_encoder()
    del sd["blocks.0.attn.proj.weight"]
    code, path, out = run_main(tmp_path, {"model": sd})
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and str(path) in err and "blocks.0.attn.proj.weight" in err


def test_head_task_mismatch_and_unknown_head_sizes_are_errors():
    with pytest.raises(InputError, match="head has 8 outputs but --task au needs 12"):
        mae.convert(make_finetuned(8), task="au")
    with pytest.raises(InputError, match="head has 1000 outputs, which fits no ABAW task"):
        mae.convert(make_finetuned(1000))
    # --drop-head keeps the encoder (e.g. of an ImageNet fine-tuned checkpoint) and lists the head as dropped.
    result = mae.convert(make_finetuned(1000), drop_head=True, task="expr")
    assert sorted(result.dropped) == ["head.bias", "head.weight"] and result.model.config.tasks == ["expr"]
    assert result.new == ["affect_heads.heads.expr.bias", "affect_heads.heads.expr.weight"]
    # A head fine-tuned on the class token (no fc_norm) cannot be reproduced by global pooling.
    sd = make_finetuned(12)
    del sd["fc_norm.weight"], sd["fc_norm.bias"]
    sd["norm.weight"], sd["norm.bias"] = torch.ones(DIM), torch.zeros(DIM)
    with pytest.raises(InputError, match="without fc_norm"):
        mae.convert(sd)


class NotATensor:
    pass


def test_unreadable_or_foreign_files_are_one_line_errors(tmp_path, capsys):
    cases = {
        "missing.pth": None,
        "garbage.pth": b"this is not a checkpoint",
        "foreign.pth": {"state_dict": {"conv1.weight": torch.zeros(2)}, "epoch": 1},
        "resnet.pth": {"conv1.weight": torch.zeros(2), "fc.weight": torch.zeros(2)},
        "pickled_object.pth": {"model": make_finetuned(8), "extra": NotATensor()},
    }
    messages = {}
    for name, content in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            torch.save(content, path)
        code = mae.main(["--checkpoint", str(path), "--output", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and str(path) in err, (name, err)
        messages[name] = err
    assert "no such file" in messages["missing.pth"]
    assert "cannot read it as a PyTorch checkpoint" in messages["garbage.pth"]
    assert "not an MAE checkpoint" in messages["foreign.pth"] and "not an MAE checkpoint" in messages["resnet.pth"]
    assert "weights-only load refuses" in messages["pickled_object.pth"]  # torch.load(weights_only=True)
    assert not (tmp_path / "out").exists()


def test_bare_and_ddp_prefixed_state_dicts():
    sd = make_finetuned(2)
    model = mae.convert_mae_checkpoint({f"module.{k}": v for k, v in sd.items()})
    pixel_values = torch.randn(1, 3, IMAGE, IMAGE)
    _, logits = ref_affect(pixel_values, sd)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values).va, torch.tanh(logits), rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize(
    "dim, depth, patch, image, heads, name",
    [
        (384, 12, 16, 224, 6, "ViT-S/16"),
        (768, 12, 16, 224, 12, "ViT-B/16"),
        (1024, 24, 16, 224, 16, "ViT-L/16"),
        (1280, 32, 14, 224, 16, "ViT-H/14"),
    ],
)
def test_standard_sizes_are_inferred_from_shapes(dim, depth, patch, image, heads, name):
    # Meta tensors: real shapes, no memory.
    grid = image // patch
    sd = {
        "cls_token": torch.empty(1, 1, dim, device="meta"),
        "pos_embed": torch.empty(1, grid * grid + 1, dim, device="meta"),
        "patch_embed.proj.weight": torch.empty(dim, 3, patch, patch, device="meta"),
        "mask_token": torch.empty(1, 1, 512, device="meta"),
        "decoder_embed.weight": torch.empty(512, dim, device="meta"),
    }
    for i in range(depth):
        sd[f"blocks.{i}.mlp.fc1.weight"] = torch.empty(4 * dim, dim, device="meta")
        sd[f"blocks.{i}.attn.qkv.bias"] = torch.empty(3 * dim, device="meta")
    for i in range(8):
        sd[f"decoder_blocks.{i}.mlp.fc1.weight"] = torch.empty(2048, 512, device="meta")
    arch = mae.infer_architecture(sd)
    assert (arch.hidden_size, arch.num_hidden_layers, arch.num_attention_heads) == (dim, depth, heads)
    assert (arch.intermediate_size, arch.patch_size, arch.image_size, arch.size_name) == (4 * dim, patch, image, name)
    assert arch.has_decoder and arch.qkv_bias
    assert (arch.decoder_hidden_size, arch.decoder_num_hidden_layers) == (512, 8)
    assert (arch.decoder_num_attention_heads, arch.decoder_intermediate_size) == (16, 2048)


def test_num_heads_rules():
    assert [mae.infer_num_heads(d) for d in (384, 768, 1024, 1280, 128)] == [6, 12, 16, 16, 2]
    with pytest.raises(InputError, match="cannot infer the attention heads of a 40-wide ViT; pass --num-heads"):
        mae.convert(make_encoder(dim=40, mlp=80))
    model = mae.convert_mae_checkpoint(make_encoder(dim=40, mlp=80), num_heads=5)
    assert model.config.num_attention_heads == 5


@pytest.mark.parametrize("as_namespace", [True, False])
@pytest.mark.parametrize("recorded", [True, False])
def test_norm_pix_loss_follows_the_checkpoints_args(recorded, as_namespace, tmp_path, capsys):
    # facebookresearch/mae stores the run's arguments (an argparse Namespace; a dict once re-saved by other tools).
    args = {"norm_pix_loss": recorded, "mask_ratio": 0.75}
    checkpoint = {"model": make_pretraining(), "args": argparse.Namespace(**args) if as_namespace else args}
    code, _, out = run_main(tmp_path, checkpoint)
    assert code == 0
    assert f"note: norm_pix_loss {recorded}, from the checkpoint's args" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["norm_pix_loss"] is recorded
    assert AutoModelForPreTraining.from_pretrained(out).config.norm_pix_loss is recorded
    # An explicit flag wins, and the summary says it disagrees with the run.
    result = mae.convert(checkpoint, norm_pix_loss=not recorded)
    assert result.model.config.norm_pix_loss is (not recorded)
    assert any("although the checkpoint's args say" in note for note in result.notes)


def test_norm_pix_loss_without_args_keeps_the_default_and_says_so(tmp_path, capsys):
    code, _, out = run_main(tmp_path, {"model": make_pretraining()})
    assert code == 0
    assert "note: norm_pix_loss False (the default): the checkpoint stores no args.norm_pix_loss" in (
        capsys.readouterr().out
    )
    assert json.loads((out / "config.json").read_text())["norm_pix_loss"] is False
    code, _, out = run_main(tmp_path, {"model": make_pretraining()}, "--norm-pix-loss", output="flagged")
    assert code == 0 and json.loads((out / "config.json").read_text())["norm_pix_loss"] is True


def test_converting_again_replaces_the_output_folder(tmp_path):
    code, _, out = run_main(tmp_path, {"model": make_pretraining()})
    (out / "stale.txt").write_text("from an earlier run")
    code, _, out = run_main(tmp_path, {"model": make_finetuned(8)})
    assert code == 0 and not (out / "stale.txt").exists()
    assert type(AutoModel.from_pretrained(out)) is FaceMAEForAffect
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pth", "out"]
