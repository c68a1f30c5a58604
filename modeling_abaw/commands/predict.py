"""`abaw predict`: per-frame affect predictions for videos and images, as CSV tables, figures and ABAW submissions."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..errors import InputError
from ..processes import add_process_option
from ..tasks import PROBABILITY_TOLERANCE, SMOOTHING_FILTERS, TASKS


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
        "unless --overwrite is given; --resume completes an interrupted run. Several processes (--num-processes, "
        "or accelerate launch) share the inputs, longest first, and write the same files one process would. "
        "Exit status: 0 when every input was processed, 1 when some failed (each "
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
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip the inputs whose CSV and PNG are in OUTPUT already (an interrupted run's: each file is written "
        "whole or not at all) and do the others, replacing what they left; the ABAW files are rewritten, from the "
        "CSVs (6 decimals) for the inputs done earlier",
    )
    add_process_option(parser, "inputs")
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
        choices=["auto", "float32", "bfloat16", "int8"],
        help="visual encoder precision. auto (default): on a CPU, measure once per machine and model which of "
        "float32, bfloat16 (where native), int8 and, with the onnx extra, onnxruntime float32/int8 is fastest within "
        f"{PROBABILITY_TOLERANCE} of float32's probabilities, and cache the choice; on a GPU, bfloat16 where "
        "supported. int8 (dynamic quantisation) runs on CPUs only",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "onnxruntime"],
        help="what runs the visual encoder: auto (default; with an explicit --dtype: torch), torch, or onnxruntime "
        "(CPU, float32 or int8; needs the onnx extra; the export is cached)",
    )
    parser.add_argument(
        "--clip-stride",
        type=int,
        help="TMF models: frames between the starts of consecutive clips (default: the clip length, clips tile the "
        "video); a smaller stride overlaps them and each frame takes the mean of its clips' predictions",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="face crops per forward pass (default 32)")


def run(args: argparse.Namespace) -> int:
    from .. import processes

    if args.resume and args.overwrite:
        raise InputError("--resume keeps the results that --overwrite would replace: choose one")
    if args.num_processes != 1:
        return processes.launch(args)

    from accelerate.utils import gather_object

    from ..inference import AffectPipeline
    from ..inference.faces import face_detector
    from ..inference.figures import plot_predictions
    from ..inference.tables import write_csv
    from ..media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    # Several processes (else one): each runs this set-up alike and meets the same errors, which the main one
    # reports. Each then predicts its share of the inputs; the main process reports the totals.
    state, device = processes.start(args.device)
    main = state.is_main_process
    with processes.same_errors_everywhere(state):
        detector = face_detector(args.detector)
        inputs, failures = [], 0
        for path in args.inputs:
            try:
                inputs += _expand(path, IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
            except InputError as error:
                failures += _report_failure(error) if main else 1
        inputs = list(dict.fromkeys(inputs))  # a file given twice (or also through its folder) is processed once
        if not inputs:
            return 2
        names = output_names(inputs)
        outputs = {
            path: [args.output / f"{name}.{extension}" for extension in ("csv", "png")] for path, name in names.items()
        }
        done = [path for path, files in outputs.items() if all(file.exists() for file in files)] if args.resume else []
        if not args.resume:
            _refuse_earlier_results([file for files in outputs.values() for file in files], args.overwrite)
        # The main process first: the others then find the model downloaded and the encoder's backend measured.
        pipeline = processes.main_process_first(
            state,
            lambda: AffectPipeline.from_pretrained(
                args.model,
                device=device,
                dtype=args.dtype,
                backend=args.backend,
                batch_size=args.batch_size,
                smoothing=None if args.smoothing == "model" else args.smoothing,
                all_faces=args.all_faces,
                face_crops=args.face_crops,
                clip_stride=args.clip_stride,
                detector=detector,
                landmarks=args.landmarks,
                stride=args.stride,
                progress=main,
            ),
        )
        if main:
            print(f"abaw predict: visual encoder: {pipeline.backend_description}", file=sys.stderr)
        if args.abaw_format and not args.resume:
            _refuse_earlier_results([_abaw_file(args.output, task) for task in pipeline.tasks], args.overwrite)
    todo = [path for path in names if path not in done]
    mine = [todo[index] for index in processes.share([path.stat().st_size for path in todo], state)]
    submissions, input_failures = {}, 0
    several = state.num_processes > 1
    with processes.outputs_progress([outputs[path][-1] for path in todo], main and several, "inputs", "input"):
        state.wait_for_everyone()  # every process has looked at OUTPUT (above) before any process writes there
        for path in mine:
            try:
                table = _predict(pipeline, path)
                write_csv(table, outputs[path][0])
                plot_predictions(table, outputs[path][1], title=f"{path.name} - {args.model}")
            except Exception as error:  # one bad input must not stop the others; Ctrl-C still does
                input_failures += _report_failure(error)
                continue
            if args.abaw_format:
                submissions[names[path]] = _main_face(table)
        gathered = gather_object([(input_failures, list(submissions.items()))])  # (one process: as it is)
    input_failures = sum(count for count, _ in gathered)
    if args.abaw_format:
        # The main process writes them from every process's tables, and from the CSVs of inputs done earlier.
        def write_abaw_files() -> None:
            import pandas as pd

            tables = dict(item for _, items in gathered for item in items)
            tables.update({names[path]: _main_face(pd.read_csv(outputs[path][0])) for path in done})
            ordered = {name: tables[name] for name in names.values() if name in tables}
            _write_abaw_files(ordered, pipeline.tasks, args.output)

        with processes.same_errors_everywhere(state):
            processes.on_main_process(state, write_abaw_files)
    if main:
        earlier = f" ({len(done)} from an earlier run)" if done else ""
        print(
            f"abaw predict: {len(inputs) - input_failures} of {len(inputs)} input(s) done{earlier}, "
            f"results in {args.output}",
            file=sys.stderr,
        )
    return 1 if failures + input_failures else 0


def _main_face(table):
    """The rows of the main face (all of them without --all-faces): what the ABAW files take."""
    return table[table["face"] == 1] if "face" in table else table


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
