"""`abaw synth`: write SynthAffect, the procedural sanity dataset in the Aff-Wild2 layout."""

import argparse
from pathlib import Path

from .push_synthaffect import add_push_options, push


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="generate SynthAffect, a procedural sanity dataset in the Aff-Wild2 layout",
        description="Generate SynthAffect: drawn faces whose action units, expressions and valence/arousal are known, "
        "as aligned crops, annotations, test lists and raw videos with a synthetic voice, in the Aff-Wild2 layout. "
        "It checks that the pipeline runs end to end; it is not a benchmark of affect recognition.",
    )
    parser.add_argument("--output", type=Path, required=True, help="dataset folder (new, empty or a SynthAffect)")
    parser.add_argument("--videos", type=int, default=8, help="number of raw videos (default: 8)")
    parser.add_argument("--frames", type=int, default=300, help="frames per video (default: 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same dataset (default: 0)")
    parser.add_argument("--fps", type=int, default=30, help="frame rate of the videos and labels (default: 30)")
    parser.add_argument("--crop-size", type=int, default=112, help="side of the aligned face crops (default: 112)")
    parser.add_argument("--no-video", action="store_true", help="skip the raw mp4 videos and their audio")
    parser.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="processes drawing the videos, one video each at a time; the output is the same for any number "
        "(default: one per CPU core, at most one per video, for runs long enough to repay their start-up; "
        "0: all in this process)",
    )
    add_push_options(parser, "--push-to-hub", required=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.synth import generate_synthaffect  # imported here so `abaw --help` stays fast

    summary = generate_synthaffect(
        args.output,
        num_videos=args.videos,
        num_frames=args.frames,
        seed=args.seed,
        fps=args.fps,
        crop_size=args.crop_size,
        write_videos=not args.no_video,
        num_workers=args.num_workers,
    )
    print(summary.describe())
    if args.repo_id:
        push(summary.root, args)
    return 0
