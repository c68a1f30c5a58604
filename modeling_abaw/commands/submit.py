"""`abaw submit`: the official ABAW test submission files from an Aff-Wild2 test release."""

import argparse
import sys
from pathlib import Path

from ..errors import InputError
from .predict import add_model_options


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="write the official ABAW test submission files of an Aff-Wild2 release",
        description="Predict every frame of every video of the official test lists of an Aff-Wild2 release from "
        "its aligned face crops (cropped_aligned/<video>/, the paper's input; a TMF model takes its audio from the "
        "raw video, <video>.mp4 for <video>_left and <video>_right) and write OUTPUT/<challenge>.csv per task of "
        "the models, in the challenge's format: header image_location,<labels>, one row per frame, in the order of "
        "the organisers' sample submission file when the release has one (else the test list's order and every "
        "frame of the raw video). Frames without a crop take the nearest frame's prediction, then the model's "
        "smoothing policy is applied. Each file is read back and checked to hold every listed video and frame "
        "exactly once.",
    )
    parser.add_argument("--data", required=True, type=Path, help="Aff-Wild2 release root (with its test lists)")
    parser.add_argument(
        "--model",
        required=True,
        action="append",
        help="FaceMAEForAffect or TMFForAffect checkpoint (folder or Hub id); repeat it for one model per task",
    )
    parser.add_argument("--output", required=True, type=Path, help="folder for the submission files (created)")
    parser.add_argument(
        "--video-dirs", nargs="*", type=Path, help="folders of the raw videos (default: DATA/videos and DATA)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace submission files already in OUTPUT")
    add_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference import AffectPipeline
    from ..inference.submission import submit_test_set

    if not args.data.is_dir():
        raise InputError(f"{args.data}: no such dataset folder")
    pipelines = [
        AffectPipeline.from_pretrained(
            model,
            device=args.device,
            dtype=args.dtype,
            backend=args.backend,
            batch_size=args.batch_size,
            face_crops=True,
            clip_stride=args.clip_stride,
        )
        for model in dict.fromkeys(args.model)
    ]
    paths = submit_test_set(args.data, pipelines, args.output, args.video_dirs, args.overwrite)
    for task, path in paths.items():
        print(f"{task}: {path}", file=sys.stderr)
    return 0
