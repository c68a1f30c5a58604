"""`abaw demo`: the paper's whole pipeline, end to end, on a generated SynthAffect dataset."""

import argparse
from pathlib import Path

from ..demo_settings import DemoSettings
from ..errors import InputError
from ..presets import FACE_MAE_PRESETS


def add_subcommand(subparsers) -> None:
    defaults = DemoSettings(output=Path("demo_output"))
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on SynthAffect: pre-train, fine-tune, extract features, TMF, evaluate",
        description="Generate SynthAffect, MAE pre-train a FaceMAE, fine-tune it for AU, EXPR and VA, extract visual "
        "and audio features, train TMF vision-only and audio-visual, evaluate on the held-out test videos and write "
        "a results table with figures. SynthAffect is a sanity dataset, not a benchmark.",
    )
    parser.add_argument("--output", type=Path, default=defaults.output, help="output folder (default: demo_output)")
    parser.add_argument("--videos", type=int, default=defaults.videos, help="SynthAffect videos (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=defaults.frames, help="frames per video (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--model-size",
        choices=list(FACE_MAE_PRESETS),
        default=defaults.model_size,
        help="FaceMAE size preset (default: %(default)s; vit-base is the paper's ViT-Base/16 at 224x224: use a GPU)",
    )
    parser.add_argument("--pretrained", help="skip pre-training and fine-tune this FaceMAE checkpoint (folder/Hub id)")
    parser.add_argument(
        "--pretrain-epochs",
        type=int,
        default=defaults.pretrain_epochs,
        help="MAE pre-training epochs (default: %(default)s)",
    )
    parser.add_argument(
        "--finetune-epochs",
        type=int,
        default=defaults.finetune_epochs,
        help="fine-tuning epochs (default: %(default)s)",
    )
    parser.add_argument("--tmf-epochs", type=int, default=defaults.tmf_epochs, help="TMF epochs (default: %(default)s)")
    parser.add_argument(
        "--audio",
        default=defaults.audio,
        help="audio features for TMF: logmel (no weights, works offline) or e.g. hubert,vggish (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        default=defaults.device,
        help="device of the feature extraction: auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps "
        "(default: %(default)s; training follows `accelerate config`)",
    )
    parser.add_argument(
        "--num-workers", type=int, default=defaults.num_workers, help="data-loading workers (default: %(default)s)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    for name in ("videos", "frames", "pretrain_epochs", "finetune_epochs", "tmf_epochs"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.videos < 4:
        raise InputError(f"--videos must be at least 4 (train, validation and test videos), got {args.videos}")
    if args.num_workers < 0:
        raise InputError(f"--num-workers must be at least 0, got {args.num_workers}")
    if args.output.exists() and not args.output.is_dir():
        raise InputError(f"--output {args.output}: not a folder")
    settings = DemoSettings(
        output=args.output, videos=args.videos, frames=args.frames, seed=args.seed, model_size=args.model_size,
        pretrained=args.pretrained, pretrain_epochs=args.pretrain_epochs, finetune_epochs=args.finetune_epochs,
        tmf_epochs=args.tmf_epochs, audio=args.audio, device=args.device, num_workers=args.num_workers,
    )  # fmt: skip
    run_demo(settings)
    return 0
