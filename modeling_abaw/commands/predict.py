"""`abaw predict`: per-frame affect predictions for videos and images, as CSV tables, figures and ABAW submissions."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..tasks import AU, EXPR, SMOOTHING_FILTERS, TASKS, VA

# Decimals kept in the CSV: probabilities to 1e-6, timestamps to the microsecond (boxes are already at 0.1 px).
CSV_DECIMALS = 6


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict action units, expression and valence/arousal for every frame of videos and images",
        description="Detect and track the main face of each video or image, predict its action units, expression "
        "and valence/arousal for every frame with a FaceMAEForAffect or TMFForAffect checkpoint, and write "
        "OUTPUT/<name>.csv (one row per frame) and OUTPUT/<name>.png (a figure of the predictions over time). "
        "Exit status: 0 when every input was processed, 1 when some failed (each failure is one line on stderr), "
        "2 when nothing could run (bad model, bad option).",
    )
    parser.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="a video, an image, or a folder of them (not recursive)"
    )
    parser.add_argument("--model", required=True, help="FaceMAEForAffect or TMFForAffect checkpoint: folder or Hub id")
    parser.add_argument("--output", type=Path, required=True, help="folder for the results (created)")
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="visual encoder precision; auto = bfloat16 on GPUs and AMX CPUs that run it natively",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="face crops per forward pass (default 32)")
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
        "--abaw-format",
        action="store_true",
        help="also write the ABAW5/6 submission files OUTPUT/abaw/<challenge>.csv (main face)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, AffectPipeline
    from ..inference.figures import plot_predictions

    inputs, failures = [], 0
    for path in args.inputs:
        try:
            inputs += _expand(path, IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
        except (InputError, FileNotFoundError) as error:
            failures += _report_failure(error)
    if not inputs:
        return 2
    pipeline = AffectPipeline.from_pretrained(
        args.model,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        smoothing=None if args.smoothing == "model" else args.smoothing,
        all_faces=args.all_faces,
        face_crops=args.face_crops,
        progress=True,
    )
    names: dict[str, Path] = {}
    submissions: dict[str, pd.DataFrame] = {}
    for path in inputs:
        name = path.stem
        try:
            if name in names:
                raise InputError(f"{path}: its results would overwrite those of {names[name]} (same name {name!r})")
            names[name] = path
            table = _predict(pipeline, path)
            _write_csv(table, args.output / f"{name}.csv")
            plot_predictions(table, args.output / f"{name}.png", title=f"{path.name} - {args.model}")
        except Exception as error:  # one bad input must not stop the others; Ctrl-C still does
            failures += _report_failure(error)
            continue
        if args.abaw_format:
            submissions[name] = table[table["face"] == 1] if "face" in table else table
    if args.abaw_format:
        _write_abaw_files(submissions, pipeline.tasks, args.output / "abaw")
    print(
        f"abaw predict: {len(inputs) - failures} of {len(inputs)} input(s) done, results in {args.output}",
        file=sys.stderr,
    )
    return 1 if failures else 0


def _expand(path: Path, extensions: tuple[str, ...]) -> list[Path]:
    """An input file as it is, or the images and videos of a folder, in name order."""
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in extensions)
        if not found:
            raise InputError(f"{path}: empty folder (no image or video files in it)")
        return found
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return [path]


def _predict(pipeline, path: Path) -> pd.DataFrame:
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


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    from ..io import atomic_path

    with atomic_path(path) as temporary:
        table.round(CSV_DECIMALS).to_csv(temporary, index=False)


def _write_abaw_files(tables: dict[str, pd.DataFrame], tasks: list[str], folder: Path) -> None:
    """One submission file per task of the model, with every input whose main face was found: AU decisions at
    probability 0.5, the most probable expression's index, valence and arousal."""
    from ..data.submission import write_submission

    found = {}
    for name, table in tables.items():
        if table["face_detected"].any():
            found[name] = table
        else:
            print(f"abaw predict: warning: {name} is left out of the ABAW files: no face found", file=sys.stderr)
    decisions = {
        AU.name: lambda table: (table[list(AU.labels)].to_numpy() >= 0.5).astype(np.int64),
        EXPR.name: lambda table: table[list(EXPR.labels)].to_numpy().argmax(axis=1),
        VA.name: lambda table: table[list(VA.labels)].to_numpy(),
    }
    for task in tasks:
        predictions = {name: decisions[task](table) for name, table in found.items()}
        path = folder / f"{TASKS[task].challenge_dir}.csv"
        write_submission(path, task, predictions, {name: len(table) for name, table in found.items()})
