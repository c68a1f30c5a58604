"""`abaw train <stage> ...`: run a training stage with the same flags as `python -m modeling_abaw.train.<stage>`.

Multi-GPU or multi-node runs use `accelerate launch -m modeling_abaw.train.<stage> ...` with the same flags.
"""

import argparse
import importlib

from ..train import STAGES


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a stage of the paper: pretrain (MAE), finetune (FaceMAE affect) or tmf (multi-modal fusion)",
        description="Train one stage of the paper on this machine's accelerator (CPU, GPU) with Accelerate. "
        "Stages: " + "; ".join(f"{name}: {text}" for name, text in STAGES.items()) + ". "
        "`abaw train STAGE --help` lists a stage's flags; several GPUs or nodes: "
        "`accelerate launch -m modeling_abaw.train.STAGE` with the same flags.",
    )
    parser.add_argument("stage", choices=STAGES, help="the stage to train")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the stage's flags (and --config FILE.yaml)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stage = importlib.import_module(f"modeling_abaw.train.{args.stage}")
    return stage.main(args.arguments, prog=f"abaw train {args.stage}")
