"""`abaw smoothing-search`: choose a trained model's post-processing on validation (paper Table 9) and store it."""

import argparse
import shutil
import sys
from pathlib import Path

from ..errors import InputError

REPORT_FILES = "smoothing_search.md, .json and .png"


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "smoothing-search",
        help="choose a model's temporal smoothing per task on validation (paper Table 9) and store it in its config",
        description="Predict every frame of the validation videos of the model's tasks with a FaceMAEForAffect (face "
        "crops) or TMFForAffect (a feature cache, --features) model, fill frames without a face from the nearest "
        "frame, and score per task, by the task's challenge metric: no smoothing, the gaussian, median and average "
        "filters over parameter grids that include the paper's values, and chains of two filters "
        "(modeling_abaw.smoothing_search). Prints the table in the form of the paper's Table 9, writes the report "
        f"({REPORT_FILES}) and stores the best policy per task as the model's smoothing_policy: in a new model "
        "folder (--output) or in MODEL/config.json (--in-place).",
    )
    parser.add_argument("--model", required=True, help="FaceMAEForAffect or TMFForAffect checkpoint: folder or Hub id")
    parser.add_argument("--data", required=True, type=Path, help="dataset root in the Aff-Wild2 layout")
    parser.add_argument("--features", type=Path, help="TMF models: the feature cache of DATA (abaw extract-features)")
    parser.add_argument(
        "--split", default="validation", choices=["train", "validation", "test"], help="default: validation"
    )
    parser.add_argument("--output", type=Path, help="new model folder: MODEL with the chosen policy, and the report")
    parser.add_argument(
        "--in-place", action="store_true", help="store the policy in MODEL/config.json (a local folder) instead"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    parser.add_argument(
        "--clip-stride", type=int, help="TMF models: frames between clip starts (default: the clip length)"
    )
    parser.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="auto: cuda, then mps, then cpu"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="face crops or clips per forward pass")
    parser.set_defaults(func=run)


def _check_arguments(args: argparse.Namespace) -> None:
    """The flag mistakes found before anything is loaded."""
    if (args.output is None) == (not args.in_place):
        raise InputError("give exactly one of --output NEW_MODEL_DIR and --in-place")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be positive, got {args.batch_size}")
    if args.clip_stride is not None and args.clip_stride < 1:
        raise InputError(f"--clip-stride must be positive, got {args.clip_stride}")
    model_dir = Path(args.model).expanduser()
    if args.in_place and not (model_dir / "config.json").is_file():
        raise InputError(
            f"--in-place rewrites MODEL/config.json, so --model must be a local model folder; {args.model!r} is not "
            "one (a Hub id?): pass --output NEW_MODEL_DIR instead"
        )
    if args.output is not None:
        if model_dir.is_dir() and args.output.resolve() == model_dir.resolve():
            raise InputError(f"--output {args.output} is the model folder itself; use --in-place to update it")
        if args.output.exists() and not args.overwrite:
            raise InputError(f"--output {args.output} already exists; pass --overwrite to replace it")


def run(args: argparse.Namespace) -> int:
    _check_arguments(args)

    from accelerate import Accelerator

    from ..data import AffWild2
    from ..evaluation import predict_frame_table
    from ..inference import load_checkpoint
    from ..io import atomic_directory
    from ..modeling_face_mae import FaceMAEForAffect
    from ..modeling_tmf import TMFForAffect
    from ..smoothing_search import search_smoothing, store_smoothing_policy

    model = load_checkpoint(args.model, (FaceMAEForAffect, TMFForAffect), "--model")
    tasks = model.config.tasks
    data = AffWild2(args.data)
    for task in tasks:
        if args.split not in data.splits(task):
            raise InputError(f"--data {args.data}: no {args.split} annotations of task {task!r}")
    frames = data.frame_table(args.split, tasks)
    load_features = None
    if isinstance(model, TMFForAffect):
        load_features = _feature_loader(args, model.config, sorted(set(frames["video"])))
    elif args.features is not None or args.clip_stride is not None:
        raise InputError("--features and --clip-stride are for TMF models; --model is a FaceMAEForAffect")

    accelerator = Accelerator(cpu=args.device == "cpu")
    if args.device in ("cuda", "mps") and accelerator.device.type != args.device:
        raise InputError(f"--device {args.device}: not available here (Accelerate runs on {accelerator.device})")
    print(
        f"abaw smoothing-search: predicting {len(frames)} {args.split} frames on {accelerator.device}", file=sys.stderr
    )
    table = predict_frame_table(
        accelerator, model, frames, load_features, batch_size=args.batch_size, clip_stride=args.clip_stride
    )
    search = search_smoothing(table.predictions, table.labels, table.videos, table.has_face, tasks)
    print(search.table_9())
    print(f"\nchosen smoothing_policy: {search.policy}")

    policy = {**model.config.smoothing_policy, **search.policy}
    if args.in_place:
        model_dir = Path(args.model).expanduser()
        store_smoothing_policy(model_dir, policy, search)
        print(f"abaw smoothing-search: stored in {model_dir / 'config.json'}; report ({REPORT_FILES}) in {model_dir}")
    else:
        with atomic_directory(args.output) as temporary:
            # The whole folder (weights, code, results, training record, pipeline), then the new policy.
            shutil.copytree(model_folder(args.model), temporary, dirs_exist_ok=True)
            store_smoothing_policy(temporary, policy, search)
        print(f"abaw smoothing-search: model with the chosen policy and its report ({REPORT_FILES}) in {args.output}")
    return 0


def model_folder(model: str) -> Path:
    """The files of a model argument: the local folder, or the Hub snapshot `load_checkpoint` loaded it from."""
    if Path(model).expanduser().is_dir():
        return Path(model).expanduser()
    from huggingface_hub import snapshot_download

    from ..inference.checkpoints import hub_is_offline

    return Path(snapshot_download(model, local_files_only=hub_is_offline()))


def _feature_loader(args: argparse.Namespace, config, videos: list[str]):
    """The feature cache's clip loader, checked to hold the model's modalities and every video to predict."""
    from ..features import FeatureCache

    if args.features is None:
        raise InputError("--model is a TMFForAffect, which predicts from cached features: pass --features CACHE")
    cache = FeatureCache(args.features)
    absent = [name for name in config.used_modalities if name not in cache.modalities]
    if absent:
        raise InputError(f"--features {args.features} holds {', '.join(cache.modalities)}, not {', '.join(absent)}")
    missing = sorted(set(videos) - set(cache.videos))
    if missing:
        raise InputError(f"--features {args.features}: no features for {len(missing)} video(s), e.g. {missing[0]!r}")
    return cache.load_features
