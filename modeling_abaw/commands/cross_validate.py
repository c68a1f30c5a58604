"""`abaw cross-validate STAGE`: train an affect stage on the official split and on every fold, one after the other,
then write the paper's fold table; `abaw fold-table DIR`: write that table from finished runs (e.g. a cluster's,
one `accelerate launch ... --fold i --output_dir DIR/fold_i` per fold).

    DIR/official/, DIR/fold_1/ .. DIR/fold_K/   one stage run each (its --output_dir)
    DIR/<split>.log                             the run's output (appended when it resumes)
    DIR/folds.md, folds.json, folds.png         the table (modeling_abaw.folds)
"""

import argparse
from pathlib import Path

AFFECT_STAGES = ("finetune", "tmf")
# Stage flags the command sets itself for each split (either spelling).
SET_BY_COMMAND = ("output_dir", "fold", "num_folds", "fold_seed", "resume_from_checkpoint")


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "cross-validate",
        help="train an affect stage on the official split and every fold, then write the fold table (Tables 1-3)",
        description="Train STAGE (finetune or tmf) on the official Train/Validation split and on each of the K "
        "video-level folds of the labelled train + validation videos, one split after the other, each as its own "
        "process (`python -m modeling_abaw.train.STAGE`, or --launcher's command), into DIR/official and "
        "DIR/fold_1 .. DIR/fold_K; then write DIR/folds.md, folds.json and folds.png (`abaw fold-table`). A split "
        "that finished is skipped, an interrupted one resumes from its latest checkpoint. Every other flag goes to "
        "the stage (`abaw train STAGE --help`).",
    )
    add_options(parser)
    parser.add_argument("stage", choices=AFFECT_STAGES, help="the affect stage to cross-validate")
    parser.add_argument(
        "stage_flags", nargs=argparse.REMAINDER, metavar="STAGE_FLAGS", help="the stage's flags (--data, --tasks, ...)"
    )
    parser.set_defaults(func=run_cross_validation, options_parser=options_parser())

    parser = subparsers.add_parser(
        "fold-table",
        help="write the cross-validation table (paper Tables 1-3) of finished runs",
        description="Read DIR/official and DIR/fold_<i> (runs of `train finetune` or `train tmf` with --fold) and "
        "write DIR/folds.md, folds.json and folds.png: per-class values of each split's best model (F1 per AU or "
        "expression, CCC of valence and arousal) and the task metric, the mean ± std over the folds, the best and "
        "worst split of each column marked.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="the folder of the runs")
    parser.add_argument("--smoothed", action="store_true", help="values after the models' smoothing policy")
    parser.set_defaults(func=run_fold_table)


def add_options(parser) -> None:
    parser.add_argument("--output-dir", type=Path, metavar="DIR", help="folder of the runs and the table (required)")
    parser.add_argument("--num-folds", type=int, default=5, metavar="K", help="folds (default: 5, the paper's)")
    parser.add_argument(
        "--fold-seed", type=int, default=0, metavar="SEED", help="seed of the fold assignment (default: 0)"
    )
    parser.add_argument(
        "--launcher",
        metavar="CMD",
        help='command that starts a stage instead of this Python, e.g. "accelerate launch --multi_gpu '
        '--num_processes 8" (then: -m modeling_abaw.train.STAGE ...)',
    )


def options_parser() -> argparse.ArgumentParser:
    """This command's own options, to find them among the stage flags (they may follow STAGE)."""
    from ..cli import ArgumentParser

    parser = ArgumentParser(prog="abaw cross-validate", add_help=False)
    add_options(parser)
    return parser


def run_cross_validation(args: argparse.Namespace) -> int:
    import shlex
    import subprocess
    import sys
    import time

    from ..errors import InputError
    from ..folds import FOLD_PREFIX, write_fold_table
    from ..train import HISTORY_FILE, OFFICIAL_SPLIT
    from ..train.checkpointing import list_checkpoints

    args, stage_flags = args.options_parser.parse_known_args(args.stage_flags, namespace=args)
    if args.output_dir is None:
        raise InputError("--output-dir is required")
    if args.num_folds < 2:
        raise InputError(f"--num-folds must be at least 2, got {args.num_folds}")
    names = [flag.split("=")[0] for flag in stage_flags if flag.startswith("--")]
    refused = [name for name in names if name[2:].replace("-", "_") in SET_BY_COMMAND]
    if refused:
        raise InputError(
            f"{refused[0]}: cross-validate sets it for each split (its own --output-dir, --num-folds, --fold-seed)"
        )
    launcher = shlex.split(args.launcher) if args.launcher else [sys.executable]
    module = f"modeling_abaw.train.{args.stage}"
    splits = [(OFFICIAL_SPLIT, OFFICIAL_SPLIT)] + [(f"{FOLD_PREFIX}{i}", str(i)) for i in range(1, args.num_folds + 1)]
    for name, fold in splits:
        output = args.output_dir / name
        if (output / "final").is_dir() and (output / HISTORY_FILE).is_file():
            print(f"{name}: finished before, skipped ({output})", flush=True)
            continue
        resume = ["--resume_from_checkpoint", "latest"] if list_checkpoints(output) else []
        command = [
            *launcher,
            *["-m", module],
            *stage_flags,
            *["--output_dir", str(output), "--fold", fold, "--num_folds", str(args.num_folds)],
            *["--fold_seed", str(args.fold_seed), *resume],
        ]
        log = args.output_dir / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"{name}: {'resuming' if resume else 'training'} into {output} (log {log})", flush=True)
        started = time.monotonic()
        # A log is a stream the stage appends to as it trains, not a result: no atomic write.
        with log.open("a") as stream:
            stream.write(f"$ {shlex.join(command)}\n")
            stream.flush()
            status = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT).returncode
        if status:
            tail = log.read_text(errors="replace").splitlines()[-5:]
            print(f"abaw cross-validate: {name} failed (exit status {status}); see {log}:", file=sys.stderr)
            print("\n".join(f"    {line}" for line in tail), file=sys.stderr)
            return 1
        print(f"{name}: done in {time.monotonic() - started:.0f} s", flush=True)
    paths, markdown = write_fold_table(args.output_dir)
    print(markdown)
    print("Wrote " + ", ".join(str(path) for path in paths))
    return 0


def run_fold_table(args: argparse.Namespace) -> int:
    from ..folds import write_fold_table

    paths, markdown = write_fold_table(args.directory, args.smoothed)
    print(markdown)
    print("Wrote " + ", ".join(str(path) for path in paths))
    return 0
