"""Convert a facebookresearch/mae-format checkpoint into a FaceMAE model folder (safetensors + config + code).

Reads the checkpoints of MAE-Face (`mae_face_pretrain_vit_base.pth`), FMAE (ViT-S/B/L) and Meta's MAE releases:
a dict with the key `model` (a bare state dict works too) holding timm-style tensors

    cls_token, pos_embed, patch_embed.proj.*, blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*, norm.*
    + for full MAE checkpoints: mask_token, decoder_embed.*, decoder_pos_embed, decoder_blocks.N.*, decoder_norm.*,
      decoder_pred.*
    + for fine-tuned ones (global pooling): fc_norm.*, head.*

and writes a `FaceMAEForPreTraining` folder when the decoder is present, else a `FaceMAEForAffect` folder. The
model size, patch size and image size come from the tensor shapes; the number of attention heads from the standard
ViT table (ViT-S 6, B 12, L 16, H 16, otherwise hidden/64) and MAE's 16 decoder heads, unless given. A fine-tuned
`head` becomes the head of the ABAW task of its size (12 -> au, 8 -> expr, 2 -> va). Every source tensor is either
converted or listed as dropped; a missing or unexpected tensor is an error. The pixel loss follows the run's own
`args.norm_pix_loss` (MAE's training checkpoints store the run's arguments; MAE-Face was trained with it on).

    python hub_scripts/convert_mae_face_checkpoint.py --checkpoint mae_face_pretrain_vit_base.pth \
        --output face-mae-base
    python hub_scripts/convert_mae_face_checkpoint.py --checkpoint finetuned_expr.pth --output face-mae-expr \
        --task expr

Importable: `load_mae_checkpoint(path)`, `convert_mae_checkpoint(checkpoint, task=None, image_size=None) -> model`,
`convert(...) -> ConversionResult` (model plus the converted / dropped / new key lists) and `main(argv)`.
"""

import argparse
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..configuration_face_mae import FaceMAEConfig, FaceMAEPreTrainingConfig
from ..errors import InputError
from ..io import atomic_directory
from ..modeling_face_mae import FaceMAEForAffect, FaceMAEForPreTraining
from ..tasks import TASK_NAMES, TASKS

PROG = "convert_mae_face_checkpoint"

# MAE's layer-norm epsilon (timm's partial(nn.LayerNorm, eps=1e-6)).
MAE_LAYER_NORM_EPS = 1e-6
# Attention heads of the standard ViT sizes, by embedding dimension (ViT-H/14 keeps 16 heads of 80 dims).
STANDARD_NUM_HEADS = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}
# MAE's decoders all use 16 heads (512-d decoder: 32 dims per head).
MAE_DECODER_NUM_HEADS = 16
VIT_SIZE_NAMES = {
    (192, 12): "ViT-Ti",
    (384, 12): "ViT-S",
    (768, 12): "ViT-B",
    (1024, 24): "ViT-L",
    (1280, 32): "ViT-H",
}

# timm Block parameter -> ViTMAELayer parameter (the fused qkv is split separately).
BLOCK_RENAMES = {
    "norm1.weight": "layernorm_before.weight",
    "norm1.bias": "layernorm_before.bias",
    "attn.proj.weight": "attention.o_proj.weight",
    "attn.proj.bias": "attention.o_proj.bias",
    "norm2.weight": "layernorm_after.weight",
    "norm2.bias": "layernorm_after.bias",
    "mlp.fc1.weight": "mlp.fc1.weight",
    "mlp.fc1.bias": "mlp.fc1.bias",
    "mlp.fc2.weight": "mlp.fc2.weight",
    "mlp.fc2.bias": "mlp.fc2.bias",
}
QKV_SPLITS = {
    "attn.qkv.weight": ("attention.q_proj.weight", "attention.k_proj.weight", "attention.v_proj.weight"),
    "attn.qkv.bias": ("attention.q_proj.bias", "attention.k_proj.bias", "attention.v_proj.bias"),
}


@dataclass
class Architecture:
    """What the tensor shapes say about the checkpoint's ViT (and MAE decoder)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    patch_size: int
    num_channels: int
    image_size: int  # of the checkpoint (its position-embedding grid times the patch size)
    qkv_bias: bool
    has_decoder: bool
    decoder_hidden_size: int | None = None
    decoder_num_hidden_layers: int | None = None
    decoder_num_attention_heads: int | None = None
    decoder_intermediate_size: int | None = None

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def size_name(self) -> str:
        name = VIT_SIZE_NAMES.get((self.hidden_size, self.num_hidden_layers), "ViT")
        return f"{name}/{self.patch_size}"


@dataclass
class ConversionResult:
    model: FaceMAEForAffect | FaceMAEForPreTraining
    architecture: Architecture
    converted: dict[str, list[str]]  # source key -> model keys it became
    dropped: dict[str, str]  # source key -> why
    new: list[str]  # model keys not in the checkpoint, freshly initialised
    notes: list[str] = field(default_factory=list)


@dataclass
class _Rule:
    source: str
    targets: tuple[str, ...]
    kind: str = "copy"  # "copy" | "split3" (fused qkv) | "pos" (position embedding, maybe interpolated)


# --------------------------------------------------------------------------------------------- reading checkpoints
def load_mae_checkpoint(path):
    """Read a `.pth` checkpoint with `weights_only=True`: a training checkpoint (a dict with `model` and maybe the
    run's `args`) or a bare state dict, checked to hold MAE tensors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        # MAE's training checkpoints also store the argparse Namespace of the run: harmless, so allowed.
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  (torch raises many types for unreadable files)
        raise InputError(f"{path}: cannot read it as a PyTorch checkpoint ({_describe_load_error(error)})") from None
    extract_state_dict(checkpoint, source=str(path))
    return checkpoint


def _describe_load_error(error: Exception) -> str:
    text = str(error)
    unsupported = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if unsupported:
        return (
            f"it pickles the object {unsupported.group(1)}, which a weights-only load refuses; "
            "save just the tensors (e.g. {'model': model.state_dict()})"
        )
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def extract_state_dict(checkpoint, source: str = "the checkpoint") -> dict[str, torch.Tensor]:
    """The tensors of an MAE checkpoint: `checkpoint["model"]`, or the checkpoint itself when it is a bare state
    dict; a DistributedDataParallel `module.` prefix is removed."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        state_dict = checkpoint["model"]
    elif isinstance(checkpoint, dict) and checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        state_dict = checkpoint
    else:
        found = sorted(map(str, checkpoint))[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise InputError(
            f"{source}: not an MAE checkpoint (expected a dict with a 'model' state dict, or a state dict; "
            f"found {found})"
        )
    not_tensors = sorted(str(k) for k, v in state_dict.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise InputError(f"{source}: not an MAE checkpoint (entries that are not tensors: {_short_list(not_tensors)})")
    state_dict = {str(k): v for k, v in state_dict.items()}
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}
    if "patch_embed.proj.weight" not in state_dict or not any(k.startswith("blocks.") for k in state_dict):
        raise InputError(
            f"{source}: not an MAE checkpoint (no 'patch_embed.proj.weight' and 'blocks.N.*' tensors; "
            f"found {_short_list(sorted(state_dict))})"
        )
    return state_dict


def checkpoint_norm_pix_loss(checkpoint) -> bool | None:
    """The `norm_pix_loss` of the training run, from the `args` MAE stores in its checkpoints (an argparse Namespace,
    or a dict once re-saved), or None when the checkpoint does not say."""
    args = checkpoint.get("args") if isinstance(checkpoint, dict) else None
    if isinstance(args, argparse.Namespace):
        args = vars(args)
    value = args.get("norm_pix_loss") if isinstance(args, dict) else None
    return None if value is None else bool(value)


# ----------------------------------------------------------------------------------------- inferring the model size
def infer_num_heads(hidden_size: int) -> int:
    """Attention heads of a ViT of this width: the standard table (S 6, B 12, L 16, H 16), else 64 dims per head."""
    if hidden_size in STANDARD_NUM_HEADS:
        return STANDARD_NUM_HEADS[hidden_size]
    if hidden_size % 64 == 0:
        return hidden_size // 64
    raise ValueError(f"hidden size {hidden_size} is not a standard ViT width")


def infer_architecture(
    state_dict: dict[str, torch.Tensor],
    num_heads: int | None = None,
    decoder_num_heads: int | None = None,
    source: str = "the checkpoint",
) -> Architecture:
    """Read the model size from the tensor shapes (works on meta tensors too)."""

    def need(key):
        if key not in state_dict:
            raise InputError(f"{source}: missing tensor {key!r}, needed to infer the model size")
        return state_dict[key]

    patch_weight = need("patch_embed.proj.weight")
    if patch_weight.dim() != 4 or patch_weight.shape[2] != patch_weight.shape[3]:
        raise InputError(
            f"{source}: patch_embed.proj.weight has shape {tuple(patch_weight.shape)}; expected (dim, channels, p, p)"
        )
    hidden_size, num_channels, patch_size = (int(s) for s in patch_weight.shape[:3])

    pos_embed = need("pos_embed")
    if pos_embed.dim() != 3 or pos_embed.shape[0] != 1 or pos_embed.shape[2] != hidden_size:
        raise InputError(
            f"{source}: pos_embed has shape {tuple(pos_embed.shape)}; expected (1, 1 + grid^2, {hidden_size})"
        )
    num_patches = int(pos_embed.shape[1]) - 1
    grid = math.isqrt(max(num_patches, 0))
    if num_patches < 1 or grid * grid != num_patches:
        raise InputError(
            f"{source}: pos_embed has {pos_embed.shape[1]} positions; expected 1 (class token) + a square grid"
        )

    depth = _count_blocks(state_dict, "blocks")
    intermediate_size = int(need("blocks.0.mlp.fc1.weight").shape[0])
    if num_heads is None:
        try:
            num_heads = infer_num_heads(hidden_size)
        except ValueError:
            raise InputError(
                f"{source}: cannot infer the attention heads of a {hidden_size}-wide ViT; pass --num-heads"
            ) from None
    if hidden_size % num_heads:
        raise InputError(f"{source}: {num_heads} attention heads do not divide the hidden size {hidden_size}")

    architecture = Architecture(
        hidden_size=hidden_size,
        num_hidden_layers=depth,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        patch_size=patch_size,
        num_channels=num_channels,
        image_size=grid * patch_size,
        qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
        has_decoder=any(k == "mask_token" or k.startswith("decoder_") for k in state_dict),
    )
    if architecture.has_decoder:
        decoder_hidden = int(need("decoder_embed.weight").shape[0])
        if decoder_num_heads is None:
            decoder_num_heads = MAE_DECODER_NUM_HEADS
        if decoder_hidden % decoder_num_heads:
            raise InputError(
                f"{source}: MAE's {decoder_num_heads} decoder heads do not divide the decoder width {decoder_hidden}; "
                "pass --decoder-num-heads"
            )
        architecture.decoder_hidden_size = decoder_hidden
        architecture.decoder_num_hidden_layers = _count_blocks(state_dict, "decoder_blocks")
        architecture.decoder_num_attention_heads = decoder_num_heads
        architecture.decoder_intermediate_size = int(need("decoder_blocks.0.mlp.fc1.weight").shape[0])
    return architecture


def _count_blocks(state_dict, prefix: str) -> int:
    indices = {int(m.group(1)) for key in state_dict if (m := re.match(rf"{prefix}\.(\d+)\.", key))}
    return max(indices) + 1 if indices else 0


# --------------------------------------------------------------------------------------------------- conversion
def interpolate_pos_embed(pos_embed: torch.Tensor, grid_size: int) -> torch.Tensor:
    """MAE's `interpolate_pos_embed`: keep the class position, resize the square grid bicubically."""
    class_pos, grid_pos = pos_embed[:, :1], pos_embed[:, 1:]
    old_grid, dim = math.isqrt(grid_pos.shape[1]), grid_pos.shape[-1]
    if old_grid == grid_size:
        return pos_embed
    grid_pos = grid_pos.float().reshape(1, old_grid, old_grid, dim).permute(0, 3, 1, 2)
    grid_pos = F.interpolate(grid_pos, size=(grid_size, grid_size), mode="bicubic", align_corners=False)
    grid_pos = grid_pos.permute(0, 2, 3, 1).flatten(1, 2).to(pos_embed.dtype)
    return torch.cat([class_pos, grid_pos], dim=1)


def _block_rules(source_prefix: str, target_prefix: str, depth: int, qkv_bias: bool) -> list[_Rule]:
    rules = []
    for index in range(depth):
        src, tgt = f"{source_prefix}.{index}.", f"{target_prefix}.{index}."
        for name, targets in QKV_SPLITS.items():
            if name == "attn.qkv.bias" and not qkv_bias:
                continue
            rules.append(_Rule(src + name, tuple(tgt + t for t in targets), "split3"))
        rules.extend(_Rule(src + name, (tgt + target,)) for name, target in BLOCK_RENAMES.items())
    return rules


def _task_for_head(head_outputs: int, task: str | None, source: str) -> str:
    sizes = ", ".join(f"{t.num_outputs} -> {t.name}" for t in TASKS.values())
    if task is not None:
        if TASKS[task].num_outputs != head_outputs:
            raise InputError(
                f"{source}: the fine-tuned head has {head_outputs} outputs but --task {task} needs "
                f"{TASKS[task].num_outputs} ({sizes})"
            )
        return task
    matching = [t.name for t in TASKS.values() if t.num_outputs == head_outputs]
    if not matching:
        raise InputError(
            f"{source}: the fine-tuned head has {head_outputs} outputs, which fits no ABAW task ({sizes}); "
            "pass --drop-head to convert the encoder only"
        )
    return matching[0]


def convert(
    checkpoint,
    task: str | None = None,
    image_size: int | None = None,
    norm_pix_loss: bool | None = None,
    num_heads: int | None = None,
    decoder_num_heads: int | None = None,
    drop_head: bool = False,
    seed: int = 0,
    source: str = "the checkpoint",
) -> ConversionResult:
    """Convert an MAE checkpoint dict (with `model`, and maybe the run's `args`) or state dict into a FaceMAE model,
    with the key report. `norm_pix_loss` defaults to the checkpoint's `args.norm_pix_loss`, else False."""
    state_dict = extract_state_dict(checkpoint, source)
    if task is not None and task not in TASKS:
        raise InputError(f"unknown task {task!r}; the ABAW tasks are {', '.join(TASK_NAMES)}")
    arch = infer_architecture(state_dict, num_heads=num_heads, decoder_num_heads=decoder_num_heads, source=source)
    notes = []

    target_image_size = arch.image_size if image_size is None else int(image_size)
    if target_image_size <= 0 or target_image_size % arch.patch_size:
        raise InputError(
            f"--image-size {target_image_size} is not a positive multiple of the checkpoint's patch size "
            f"{arch.patch_size}"
        )
    new_grid = target_image_size // arch.patch_size
    if new_grid != arch.grid_size:
        notes.append(
            f"position embeddings interpolated (bicubic) from {arch.grid_size}x{arch.grid_size} to "
            f"{new_grid}x{new_grid} patches ({arch.image_size} -> {target_image_size} px)"
        )

    # The plan: which source tensor becomes which model tensor(s); everything else is dropped or unexpected.
    rules = [
        _Rule("cls_token", ("vit.embeddings.cls_token",)),
        _Rule("pos_embed", ("vit.embeddings.position_embeddings",), "pos"),
        _Rule("patch_embed.proj.weight", ("vit.embeddings.patch_embeddings.projection.weight",)),
        _Rule("patch_embed.proj.bias", ("vit.embeddings.patch_embeddings.projection.bias",)),
        *_block_rules("blocks", "vit.layers", arch.num_hidden_layers, arch.qkv_bias),
    ]
    dropped: dict[str, str] = {}
    has_head = any(k in state_dict for k in ("head.weight", "head.bias"))
    has_fc_norm = any(k in state_dict for k in ("fc_norm.weight", "fc_norm.bias"))
    if arch.has_decoder:
        model_class, config_class, allowed_new = FaceMAEForPreTraining, FaceMAEPreTrainingConfig, ()
        if has_head or has_fc_norm:
            raise InputError(
                f"{source}: has both an MAE decoder and a fine-tuned fc_norm/head; expected one or the other"
            )
        rules += [_Rule("norm.weight", ("vit.layernorm.weight",)), _Rule("norm.bias", ("vit.layernorm.bias",))]
        rules += [
            _Rule("mask_token", ("decoder.mask_token",)),
            _Rule("decoder_pos_embed", ("decoder.decoder_pos_embed",), "pos"),
            _Rule("decoder_embed.weight", ("decoder.decoder_embed.weight",)),
            _Rule("decoder_embed.bias", ("decoder.decoder_embed.bias",)),
            *_block_rules("decoder_blocks", "decoder.decoder_layers", arch.decoder_num_hidden_layers, arch.qkv_bias),
            _Rule("decoder_norm.weight", ("decoder.decoder_norm.weight",)),
            _Rule("decoder_norm.bias", ("decoder.decoder_norm.bias",)),
            _Rule("decoder_pred.weight", ("decoder.decoder_pred.weight",)),
            _Rule("decoder_pred.bias", ("decoder.decoder_pred.bias",)),
        ]
        tasks = [task] if task else list(TASK_NAMES)
    else:
        model_class, config_class, allowed_new = FaceMAEForAffect, FaceMAEConfig, ("fc_norm.", "affect_heads.")
        for key in ("norm.weight", "norm.bias"):
            if key in state_dict:
                dropped[key] = (
                    "the encoder's final norm: with global pooling fc_norm replaces it, as in MAE fine-tuning"
                )
        if has_fc_norm:
            rules += [_Rule("fc_norm.weight", ("fc_norm.weight",)), _Rule("fc_norm.bias", ("fc_norm.bias",))]
        head_task = None
        if has_head and drop_head:
            for key in ("head.weight", "head.bias"):
                if key in state_dict:
                    dropped[key] = "--drop-head"
        elif has_head:
            if "head.weight" not in state_dict:
                raise InputError(f"{source}: has head.bias but no head.weight")
            if not has_fc_norm:
                raise InputError(
                    f"{source}: the head was fine-tuned without fc_norm (class-token pooling), which "
                    "FaceMAEForAffect's global average pooling cannot reproduce; pass --drop-head to convert the "
                    "encoder only"
                )
            head_task = _task_for_head(int(state_dict["head.weight"].shape[0]), task, source)
            prefix = f"affect_heads.heads.{head_task}."
            rules += [_Rule("head.weight", (prefix + "weight",)), _Rule("head.bias", (prefix + "bias",))]
            notes.append(
                f"head ({TASKS[head_task].num_outputs} outputs) -> task {head_task}; its outputs must follow the "
                f"order {', '.join(TASKS[head_task].labels)}"
                + (" (tanh is applied)" if TASKS[head_task].is_regression else "")
            )
        tasks = [head_task] if head_task else ([task] if task else list(TASK_NAMES))

    expected = {rule.source for rule in rules}
    missing = sorted(expected - set(state_dict))
    unexpected = sorted(set(state_dict) - expected - set(dropped))
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing {len(missing)} tensor(s): {_short_list(missing)}")
        if unexpected:
            problems.append(f"unexpected {len(unexpected)} tensor(s): {_short_list(unexpected)}")
        raise InputError(
            f"{source}: does not match a {arch.size_name} MAE {'pre-training' if arch.has_decoder else 'encoder'} "
            f"checkpoint with {arch.num_hidden_layers} blocks: {'; '.join(problems)}"
        )

    recorded_norm_pix_loss = checkpoint_norm_pix_loss(checkpoint)
    if norm_pix_loss is None:
        norm_pix_loss = bool(recorded_norm_pix_loss)
        if arch.has_decoder:
            notes.append(
                f"norm_pix_loss {norm_pix_loss}, from the checkpoint's args"
                if recorded_norm_pix_loss is not None
                else "norm_pix_loss False (the default): the checkpoint stores no args.norm_pix_loss; pass "
                "--norm-pix-loss if it was pre-trained with normalised pixel targets"
            )
    elif recorded_norm_pix_loss is not None and norm_pix_loss != recorded_norm_pix_loss:
        notes.append(
            f"norm_pix_loss {norm_pix_loss} as asked, although the checkpoint's args say {recorded_norm_pix_loss}"
        )

    config_kwargs = {
        "hidden_size": arch.hidden_size,
        "num_hidden_layers": arch.num_hidden_layers,
        "num_attention_heads": arch.num_attention_heads,
        "intermediate_size": arch.intermediate_size,
        "hidden_act": "gelu",
        "image_size": target_image_size,
        "patch_size": arch.patch_size,
        "num_channels": arch.num_channels,
        "qkv_bias": arch.qkv_bias,
        "layer_norm_eps": MAE_LAYER_NORM_EPS,
        "norm_pix_loss": bool(norm_pix_loss),
        "tasks": tasks,
    }
    if arch.has_decoder:
        config_kwargs.update(
            decoder_hidden_size=arch.decoder_hidden_size,
            decoder_num_hidden_layers=arch.decoder_num_hidden_layers,
            decoder_num_attention_heads=arch.decoder_num_attention_heads,
            decoder_intermediate_size=arch.decoder_intermediate_size,
        )
    config = config_class(**config_kwargs)
    torch.manual_seed(seed)  # the new heads' initialisation is reproducible
    model = model_class(config).eval()
    target_state = model.state_dict()

    converted_tensors, converted, mismatched = {}, {}, []
    for rule in rules:
        tensor = state_dict[rule.source]
        if rule.kind == "pos":
            # Checked against the checkpoint's own grid first, then interpolated to the model's.
            width = target_state[rule.targets[0]].shape[-1]
            if tuple(tensor.shape) != (1, arch.grid_size**2 + 1, width):
                mismatched.append(f"{rule.source} {tuple(tensor.shape)} != {(1, arch.grid_size**2 + 1, width)}")
                continue
            tensor = interpolate_pos_embed(tensor, new_grid)
        expected_shape = tuple(target_state[rule.targets[0]].shape)
        if rule.kind == "split3":
            expected_shape = (3 * expected_shape[0], *expected_shape[1:])
        if tuple(tensor.shape) != expected_shape:
            mismatched.append(f"{rule.source} {tuple(tensor.shape)} != {expected_shape}")
            continue
        pieces = tensor.chunk(3, dim=0) if rule.kind == "split3" else (tensor,)
        for target, piece in zip(rule.targets, pieces):
            converted_tensors[target] = piece.detach().to(target_state[target].dtype).contiguous()
        converted[rule.source] = list(rule.targets)
    if mismatched:
        raise InputError(
            f"{source}: tensor shapes do not fit one {arch.size_name} model: {_short_list(mismatched, limit=5)}"
        )

    new = sorted(set(target_state) - set(converted_tensors))
    not_allowed = [key for key in new if not key.startswith(allowed_new)]
    if not_allowed:  # the plan above covers every model tensor; reaching this is a converter bug
        raise RuntimeError(f"converter bug: no source tensor for {not_allowed}")
    model.load_state_dict({**target_state, **converted_tensors}, strict=True)
    return ConversionResult(model, arch, converted, dropped, new, notes)


def convert_mae_checkpoint(checkpoint, task=None, image_size=None, **kwargs):
    """Convert an MAE checkpoint dict (with `model`) or state dict and return the FaceMAE model."""
    return convert(checkpoint, task=task, image_size=image_size, **kwargs).model


# ------------------------------------------------------------------------------------------------- saving, CLI
def save_model(model, output) -> list[str]:
    """`save_pretrained` into a new folder that replaces `output` once complete; returns the file names."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a folder")
    with atomic_directory(output) as staging:
        model.save_pretrained(staging)
        return sorted(path.name for path in staging.iterdir())


def format_summary(result: ConversionResult, checkpoint=None, output=None, saved_files=()) -> str:
    arch, config = result.architecture, result.model.config
    lines = [f"Converted {checkpoint} -> {output}" if checkpoint is not None else "Converted checkpoint"]
    lines.append(
        f"  model: {type(result.model).__name__}, {arch.size_name} (hidden {arch.hidden_size}, "
        f"{arch.num_hidden_layers} layers, {arch.num_attention_heads} heads, MLP {arch.intermediate_size}, "
        f"qkv bias {arch.qkv_bias})"
    )
    lines.append(
        f"  image size: {config.image_size}x{config.image_size} ({config.image_size // config.patch_size}^2 "
        f"patches of {config.patch_size}x{config.patch_size}); checkpoint's {arch.image_size}x{arch.image_size}"
    )
    if arch.has_decoder:
        lines.append(
            f"  decoder: hidden {arch.decoder_hidden_size}, {arch.decoder_num_hidden_layers} layers, "
            f"{arch.decoder_num_attention_heads} heads, MLP {arch.decoder_intermediate_size}; "
            f"norm_pix_loss {config.norm_pix_loss}"
        )
    lines.append(f"  tasks: {', '.join(config.tasks)}")
    num_targets = sum(len(targets) for targets in result.converted.values())
    lines.append(f"  converted: {len(result.converted)} checkpoint tensors -> {num_targets} model tensors")
    by_reason: dict[str, list[str]] = {}
    for key, why in result.dropped.items():
        by_reason.setdefault(why, []).append(key)
    lines.append(
        f"  dropped ({len(result.dropped)}): "
        + ("; ".join(f"{', '.join(keys)} ({why})" for why, keys in by_reason.items()) or "none")
    )
    lines.append(f"  new, initialised ({len(result.new)}): {', '.join(result.new) or 'none'}")
    lines.extend(f"  note: {note}" for note in result.notes)
    if saved_files:
        lines.append(f"  files: {', '.join(saved_files)}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a facebookresearch/mae-format checkpoint (MAE-Face, FMAE, Meta MAE) into a FaceMAE "
        "model folder: FaceMAEForPreTraining when it has the MAE decoder, else FaceMAEForAffect.",
    )
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="the .pth file (dict with 'model', or a state dict)"
    )
    parser.add_argument("--output", required=True, type=Path, help="folder to write the converted model to")
    parser.add_argument(
        "--task",
        choices=TASK_NAMES,
        help="task of a fine-tuned head (default: from its size, 12 au / 8 expr / 2 va); without a head: the only "
        "task of the new model (default: all)",
    )
    parser.add_argument(
        "--image-size", type=int, help="input size of the converted model; position embeddings are interpolated"
    )
    parser.add_argument(
        "--norm-pix-loss",
        action=argparse.BooleanOptionalAction,
        help="whether the checkpoint was pre-trained with normalised pixel targets (default: the checkpoint's "
        "args.norm_pix_loss, else no)",
    )
    parser.add_argument("--num-heads", type=int, help="encoder attention heads (default: standard ViT table)")
    parser.add_argument(
        "--decoder-num-heads", type=int, help=f"decoder attention heads (default: {MAE_DECODER_NUM_HEADS})"
    )
    parser.add_argument(
        "--drop-head", action="store_true", help="drop a fine-tuned head (e.g. ImageNet's) instead of converting it"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the new heads' initialisation (default: 0)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for flag, value in (("--num-heads", args.num_heads), ("--decoder-num-heads", args.decoder_num_heads)):
            if value is not None and value <= 0:
                raise InputError(f"{flag} must be positive, got {value}")
        checkpoint = load_mae_checkpoint(args.checkpoint)
        result = convert(
            checkpoint,
            task=args.task,
            image_size=args.image_size,
            norm_pix_loss=args.norm_pix_loss,
            num_heads=args.num_heads,
            decoder_num_heads=args.decoder_num_heads,
            drop_head=args.drop_head,
            seed=args.seed,
            source=str(args.checkpoint),
        )
        saved = save_model(result.model, args.output)
    except InputError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    print(format_summary(result, args.checkpoint, args.output, saved))
    return 0


def _short_list(items, limit: int = 8) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


if __name__ == "__main__":
    sys.exit(main())
