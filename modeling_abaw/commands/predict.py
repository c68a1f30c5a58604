"""`abaw predict`: per-frame affect predictions for videos and images, as CSV tables, figures and ABAW submissions."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..errors import InputError
from ..tasks import SMOOTHING_FILTERS, TASKS


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict action units, expression and valence/arousal for every frame of videos and images",
        description="Detect and track the main face of each video or image, predict its action units, expression "
        "and valence/arousal for every frame with a FaceMAEForAffect or TMFForAffect checkpoint, and write "
        "OUTPUT/<name>.csv (one row per frame: frame, timestamp, has_face, predicted, the face box face_x, face_y, "
        "face_w, face_h, its roll face_roll, then the model's predictions) and OUTPUT/<name>.png (a figure of the "
        "predictions over time). "
        "<name> is the input's file name without its extension; inputs whose names differ only by their "
        "extension keep it (x.mp4 -> x.mp4.csv, x.jpg -> x.jpg.csv), and files of the same name from different "
        "folders get -2, -3, ... in the order given. Results of an earlier run in OUTPUT are never replaced "
        "unless --overwrite is given. Exit status: 0 when every input was processed, 1 when some failed (each "
        "failure is one line on stderr), 2 when nothing could run (bad model, bad option, results already there).",
    )
    parser.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="a video, an image, or a folder of them (not recursive)"
    )
    parser.add_argument("--model", required=True, help="FaceMAEForAffect or TMFForAffect checkpoint: folder or Hub id")
    parser.add_argument("--output", type=Path, required=True, help="folder for the results (created)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace results of an earlier run in OUTPUT (default: refuse)"
    )
    add_model_options(parser)
    parser.add_argument(
        "--smoothing",
        default="model",
        choices=["model", *SMOOTHING_FILTERS],
        help="temporal smoothing: the model's policy (default), or one filter for every task",
    )
    parser.add_argument(
        "--all-faces",
        action="store_true",
        help="predict every face, not only the main one (a `face` column numbers them, 1 = main)",
    )
    parser.add_argument(
        "--face-crops",
        action="store_true",
        help="inputs are face crops already (e.g. Aff-Wild2 cropped_aligned images): no detection",
    )
    parser.add_argument(
        "--detector",
        default="auto",
        help="face detector: blazeface (landmarks: aligned crops, face_roll), haar (boxes only), or auto (default: "
        "blazeface where LiteRT is installed, else haar)",
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=1,
        help="encode every k-th face frame and interpolate the frames between (linear in time, before smoothing; "
        "the `predicted` column marks encoded frames): about k times less encoder work (default 1: every frame)",
    )
    parser.add_argument(
        "--landmarks",
        action="store_true",
        help="add the face's landmarks to the CSV (right_eye_x, right_eye_y, ... mouth_centre_y; pixels)",
    )
    parser.add_argument(
        "--abaw-format",
        action="store_true",
        help="also write OUTPUT/abaw/<challenge>.csv in the ABAW5/6 submission format, one video per input, from its "
        "main face (an official test submission from an Aff-Wild2 release: `abaw submit`)",
    )
    parser.set_defaults(func=run)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """How the model runs: the options `abaw predict` and `abaw submit` share."""
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="visual encoder precision; auto = bfloat16 on GPUs and AMX CPUs that run it natively",
    )
    parser.add_argument(
        "--clip-stride",
        type=int,
        help="TMF models: frames between the starts of consecutive clips (default: the clip length, clips tile the "
        "video); a smaller stride overlaps them and each frame takes the mean of its clips' predictions",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="face crops per forward pass (default 32)")


def run(args: argparse.Namespace) -> int:
    from ..inference import AffectPipeline
    from ..inference.faces import face_detector
    from ..inference.figures import plot_predictions
    from ..inference.tables import write_csv
    from ..media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    detector = face_detector(args.detector)
    inputs, failures = [], 0
    for path in args.inputs:
        try:
            inputs += _expand(path, IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
        except InputError as error:
            failures += _report_failure(error)
    inputs = list(dict.fromkeys(inputs))  # a file given twice (or also through its folder) is processed once
    if not inputs:
        return 2
    names = output_names(inputs)
    _refuse_earlier_results(
        [args.output / f"{name}.{extension}" for name in names.values() for extension in ("csv", "png")],
        args.overwrite,
    )
    pipeline = AffectPipeline.from_pretrained(
        args.model,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        smoothing=None if args.smoothing == "model" else args.smoothing,
        all_faces=args.all_faces,
        face_crops=args.face_crops,
        clip_stride=args.clip_stride,
        detector=detector,
        landmarks=args.landmarks,
        stride=args.stride,
        progress=True,
    )
    if args.abaw_format:
        _refuse_earlier_results([_abaw_file(args.output, task) for task in pipeline.tasks], args.overwrite)
    submissions = {}
    for path, name in names.items():
        try:
            table = _predict(pipeline, path)
            write_csv(table, args.output / f"{name}.csv")
            plot_predictions(table, args.output / f"{name}.png", title=f"{path.name} - {args.model}")
        except Exception as error:  # one bad input must not stop the others; Ctrl-C still does
            failures += _report_failure(error)
            continue
        if args.abaw_format:
            submissions[name] = table[table["face"] == 1] if "face" in table else table
    if args.abaw_format:
        _write_abaw_files(submissions, pipeline.tasks, args.output)
    print(
        f"abaw predict: {len(inputs) - failures} of {len(inputs)} input(s) done, results in {args.output}",
        file=sys.stderr,
    )
    return 1 if failures else 0


def output_names(paths: list[Path]) -> dict[Path, str]:
    """The output name of each input, in input order (the rule `--help` states): its stem; where several inputs
    share a stem, each of them keeps its extension; where several share a file name too (files from different
    folders), the second and later get -2, -3, ... Names are compared case-insensitively, as some file systems do."""
    stems = [path.stem.casefold() for path in paths]
    names, taken = {}, set()
    for path, stem in zip(paths, stems):
        base = path.stem if stems.count(stem) == 1 else path.name
        name, number = base, 2
        while name.casefold() in taken:
            name, number = f"{base}-{number}", number + 1
        taken.add(name.casefold())
        names[path] = name
    return names


def _refuse_earlier_results(paths: list[Path], overwrite: bool) -> None:
    existing = [path for path in paths if path.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise InputError(
            f"{existing[0]} already exists{more}, from an earlier run; pass --overwrite to replace it, "
            "or choose another --output"
        )


def _expand(path: Path, extensions: tuple[str, ...]) -> list[Path]:
    """An input file as it is, or the images and videos of a folder, in name order."""
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in extensions)
        if not found:
            raise InputError(f"{path}: empty folder (no image or video files in it)")
        return found
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    return [path]


def _predict(pipeline, path: Path):
    """Run the pipeline, printing its warnings (e.g. no face, no audio) as one line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = pipeline(path)
    for warning in caught:
        print(f"abaw predict: warning: {warning.message}", file=sys.stderr)
    return table


def _report_failure(error: Exception) -> int:
    reason = str(error) if isinstance(error, (InputError, OSError)) else f"{type(error).__name__}: {error}"
    print(f"abaw predict: error: {reason}", file=sys.stderr)
    return 1


def _abaw_file(output: Path, task: str) -> Path:
    from ..data.submission import submission_file_name

    return output / "abaw" / submission_file_name(task)


def _write_abaw_files(tables: dict, tasks: list[str], output: Path) -> None:
    """One submission file per task of the model, with every input whose main face was found: the challenge's
    decisions of each task (`AffectTask.decisions`)."""
    from ..data.submission import write_submission

    found = {}
    for name, table in tables.items():
        if table["has_face"].any():
            found[name] = table
        else:
            print(f"abaw predict: warning: {name} is left out of the ABAW files: no face found", file=sys.stderr)
    num_frames = {name: len(table) for name, table in found.items()}
    for name in tasks:
        task = TASKS[name]
        decisions = {video: task.decisions(table[list(task.labels)].to_numpy()) for video, table in found.items()}
        write_submission(_abaw_file(output, name), name, decisions, num_frames)
