"""The MAE fine-tuning recipe in the optimizer: layer-wise learning-rate decay and MAE's weight-decay exclusions
(facebookresearch/mae util/lr_decay.py), kept by the scheduler; the recipe flags set the loaded model's config."""

import pytest
from conftest import TINY_FACE_MAE
from transformers import get_cosine_schedule_with_warmup

from modeling_abaw import FaceMAEConfig, FaceMAEForAffect
from modeling_abaw.train.finetune import FinetuneArguments, layer_decay_groups
from modeling_abaw.train.loop import make_optimizer


def expected_layer_id(name: str) -> int:
    """By hand, for the 2-layer tiny FaceMAE: embeddings 0, layer i: i + 1, fc_norm and heads 3."""
    if name.startswith("vit.embeddings."):
        return 0
    for layer in range(2):
        if name.startswith(f"vit.layers.{layer}."):
            return layer + 1
    return 3


def group_of(optimizer, parameter):
    return next(group for group in optimizer.param_groups if any(p is parameter for p in group["params"]))


@pytest.mark.parametrize("decay", [0.65, 1.0])
def test_each_parameter_learns_at_the_layer_decayed_rate(decay, tmp_path):
    model = FaceMAEForAffect(FaceMAEConfig(**TINY_FACE_MAE, tasks=["au", "va"]))
    model.vit.embeddings.position_embeddings.requires_grad_(True)  # learnable, as in fine-tuning
    args = FinetuneArguments(data="d", model="m", output_dir=str(tmp_path), tasks="au", layer_decay=decay)
    optimizer = make_optimizer(layer_decay_groups(model, args.weight_decay, args.layer_decay), args)
    names = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(names)
    for name, parameter in model.named_parameters():
        group = group_of(optimizer, parameter)
        assert group["lr"] == pytest.approx(1e-4 * decay ** (3 - expected_layer_id(name))), name
        no_decay = parameter.ndim == 1 or name in ("vit.embeddings.cls_token", "vit.embeddings.position_embeddings")
        assert group["weight_decay"] == (0.0 if no_decay else 0.05), name
    if decay == 1.0:
        assert {group["lr"] for group in optimizer.param_groups} == {1e-4}
    else:
        assert len({group["lr"] for group in optimizer.param_groups}) == 4  # embeddings, 2 layers, top

    # The schedule scales every group by the same factor: the layer scales hold at every step.
    scheduler = get_cosine_schedule_with_warmup(optimizer, 2, 10)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    factor = scheduler.get_last_lr()[0] / optimizer.param_groups[0]["initial_lr"]
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(factor * group["initial_lr"])
        assert group["initial_lr"] == pytest.approx(1e-4 * group["lr_scale"])


def test_the_recipe_flags_default_to_mae_and_set_the_config():
    args = FinetuneArguments(data="d", model="m", output_dir="o", tasks="expr")
    assert (args.drop_path_rate, args.layer_decay, args.head_init_std, args.freeze_position_embeddings) == (
        0.1,
        0.65,
        2e-5,
        False,
    )
    assert args.recipe_overrides == {
        "drop_path_rate": 0.1,
        "head_initializer_range": 2e-5,
        "learnable_position_embeddings": True,
    }
    frozen = FinetuneArguments(data="d", model="m", output_dir="o", tasks="au", freeze_position_embeddings=True)
    assert frozen.recipe_overrides["learnable_position_embeddings"] is False
    config = FaceMAEConfig(**TINY_FACE_MAE, **frozen.recipe_overrides)
    assert (config.drop_path_rate, config.learnable_position_embeddings) == (0.1, False)
