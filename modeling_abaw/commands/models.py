"""`abaw models`: build the paper's models from their configs, save them and reload them through the Auto classes."""

import argparse
from pathlib import Path

from ..errors import InputError


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="build the FaceMAE models (paper configuration), print their summary, save and reload them",
        # argparse %-formats `help` strings but not `description`: a single % here.
        description="Build FaceMAEForPreTraining and FaceMAEForAffect from the paper's configuration (ViT-Base/16, "
        "224x224, 75% masking), print their sizes, save them as Hub-ready folders and reload them with AutoModel.",
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for the two model folders")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.output.exists() and not args.output.is_dir():
        raise InputError(f"--output {args.output}: not a folder")

    import torch
    from transformers import AutoModel

    from ..configuration_face_mae import FaceMAEConfig, FaceMAEPreTrainingConfig
    from ..io import atomic_directory
    from ..modeling_face_mae import FaceMAEForAffect, FaceMAEForPreTraining

    for config, model_class in (
        (FaceMAEPreTrainingConfig(), FaceMAEForPreTraining),
        (FaceMAEConfig(), FaceMAEForAffect),
    ):
        model = model_class(config).eval()
        folder = args.output / model_class.__name__
        with atomic_directory(folder) as temporary:
            model.save_pretrained(temporary)
        reloaded = AutoModel.from_pretrained(folder).eval()
        inputs = {"pixel_values": torch.randn(1, 3, config.image_size, config.image_size)}
        if model_class is FaceMAEForPreTraining:
            inputs["noise"] = torch.rand(1, (config.image_size // config.patch_size) ** 2)
        with torch.inference_mode():
            outputs, reloaded_outputs = model(**inputs), reloaded(**inputs)
        same = all(torch.equal(value, reloaded_outputs[name]) for name, value in outputs.items())
        shapes = ", ".join(f"{name} {tuple(value.shape)}" for name, value in outputs.items() if value.dim())
        print(f"{model_class.__name__}: {model.num_parameters() / 1e6:.1f}M parameters, outputs {shapes}")
        print(f"  saved to {folder}; AutoModel reload -> {type(reloaded).__name__}, identical outputs: {same}")
    return 0
