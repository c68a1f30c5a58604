"""`abaw extract-features`: the per-frame visual and audio feature cache that TMF trains on."""

import argparse

from ..errors import InputError
from ..processes import add_process_option

DTYPES = ("float32", "bfloat16", "float16")


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "extract-features",
        help="extract per-frame FaceMAE and audio features of a dataset into a cache",
        description="Extract, for every annotated video of a dataset in the Aff-Wild2 layout, the FaceMAEForAffect "
        "pooled features of its face crops and audio features aligned to its frames, into a resumable cache "
        "(one safetensors file per video). The cache records its backbones as TMF checkpoints will: Hub ids as "
        "they are, folders as absolute paths. Several processes (--num-processes, or accelerate launch) share the "
        "videos, longest first, and write the cache one process would.",
    )
    parser.add_argument(
        "--data", required=True, help="dataset root in the Aff-Wild2 layout (e.g. a SynthAffect folder)"
    )
    parser.add_argument("--visual", required=True, help="FaceMAEForAffect checkpoint: local folder or Hub id")
    parser.add_argument(
        "--audio",
        default="",
        help="comma-separated audio extractors: hubert, wav2vec2, vggish, each optionally NAME:MODEL (a Hub id or "
        "folder), and logmel (no weights), e.g. hubert,vggish:./vggish (default: none)",
    )
    parser.add_argument("--output", required=True, help="cache folder (created; a re-run skips videos already done)")
    parser.add_argument("--video-dirs", nargs="*", help="folders of the raw videos (default: DATA/videos and DATA)")
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--batch-size", type=int, default=64, help="face crops per forward pass")
    add_process_option(parser, "videos")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import processes

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be positive, got {args.batch_size}")
    if args.num_processes != 1:
        return processes.launch(args)

    import torch

    from ..features import extract_features

    state, device = processes.start(args.device)
    # Its InputErrors (a bad dataset, model or cache folder) come before any video, alike in every process.
    with processes.same_errors_everywhere(state):
        cache = extract_features(
            args.data,
            args.visual,
            args.output,
            audio=[spec.strip() for spec in args.audio.split(",") if spec.strip()],
            video_dirs=args.video_dirs,
            device=device,
            dtype=getattr(torch, args.dtype),
            batch_size=args.batch_size,
        )
    if state.is_main_process:
        sizes = ", ".join(f"{name} {size}-d" for name, size in cache.modalities.items())
        print(f"{len(cache.videos)} videos in {cache.path} ({sizes})")
    return 0
