"""The flags of the training stages: those every stage shares, those of the affect stages, and how a stage parses
them (command line, `--config file.yaml`) and turns a user's mistake into one line."""

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, TypeVar

import yaml
from huggingface_hub import get_token
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import HfArgumentParser

from ..errors import InputError
from ..machine import usable_cores
from ..tasks import validate_tasks
from . import OFFICIAL_SPLIT


def default_num_workers() -> int:
    """DataLoader workers for this machine: one per core the process may use, up to 8 (more rarely speeds up
    decoding small face crops); none on a single core, where a worker would only compete with training."""
    cores = usable_cores()
    return 0 if cores <= 1 else min(cores, 8)


@dataclass(kw_only=True)
class TrainingArguments:
    """Flags shared by every stage. Each stage's dataclass adds its own flags and sets the paper's defaults."""

    stage: ClassVar[str | None] = None  # not a flag: each stage's class names its stage (train.STAGES)
    output_dir: str = field(metadata={"help": "Folder for checkpoints, the best and final models, logs and history."})
    num_epochs: int = field(default=1, metadata={"help": "Training epochs; the learning-rate schedule spans them all."})
    max_steps: int | None = field(
        default=None,
        metadata={"help": "Stop after this many optimizer steps (the schedule still spans --num_epochs)."},
    )
    batch_size: int = field(
        default=32,
        metadata={
            "help": "Samples per optimizer step over all processes (the paper's batch size). Each device takes "
            "micro-batches of batch_size / (processes x gradient_accumulation_steps)."
        },
    )
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimizer step."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate of AdamW."})
    weight_decay: float = field(default=0.05, metadata={"help": "AdamW weight decay (none on biases and norms)."})
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW beta1."})
    adam_beta2: float = field(default=0.999, metadata={"help": "AdamW beta2."})
    warmup_ratio: float = field(
        default=0.05, metadata={"help": "Fraction of the steps with linear warm-up; cosine decay follows."}
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm; 0 disables clipping."})
    mixed_precision: Literal["no", "fp16", "bf16"] = field(
        default="no", metadata={"help": "Autocast precision (fp16 needs a GPU; bf16 a GPU or a recent CPU)."}
    )
    seed: int = field(default=42, metadata={"help": "Seed of initialisation, data order, augmentation and dropout."})
    num_workers: int = field(
        default_factory=default_num_workers,
        metadata={"help": "DataLoader worker processes per training process (default: this machine's cores, up to 8)."},
    )
    logging_steps: int = field(default=10, metadata={"help": "Log the training loss every this many steps."})
    eval_steps: int = field(
        default=0, metadata={"help": "Evaluate every this many steps; 0: at the end of every epoch. Also at the end."}
    )
    save_steps: int = field(
        default=0, metadata={"help": "Checkpoint every this many steps; 0: at the end of every epoch. Also at the end."}
    )
    save_total_limit: int = field(default=3, metadata={"help": "Checkpoints kept (the newest)."})
    metric_for_best_model: str = field(
        default="smoothed/score",
        metadata={"help": "Validation metric choosing output/best; higher is better unless its name ends in 'loss'."},
    )
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "A checkpoint folder, or 'latest' for the newest in <output_dir>/checkpoints."}
    )
    report_to: str = field(default="tensorboard", metadata={"help": "Accelerate trackers: tensorboard, all, none."})
    verbose: bool = field(
        default=False, metadata={"help": "Print the full weight-loading report (every new and unused key)."}
    )
    record_process_info: bool = field(
        default=False,
        metadata={"help": "Debug: each process writes process_info/rank_<i>.json (samples seen, parameter checksum)."},
    )
    push_to_hub: bool = field(
        default=False,
        metadata={
            "help": "At the end of the run, push <output_dir>/best to the Hub as --hub_model_id (as `abaw push` does; "
            "a TMF's local backbones go to <hub_model_id>-<name>)."
        },
    )
    hub_model_id: str | None = field(default=None, metadata={"help": "The Hub repo of --push_to_hub, ORG/NAME."})

    def __post_init__(self):
        for name in ("num_epochs", "batch_size", "gradient_accumulation_steps", "logging_steps", "save_total_limit"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name} must be at least 1, got {getattr(self, name)}")
        for name in ("eval_steps", "save_steps", "num_workers", "max_grad_norm", "weight_decay"):
            if getattr(self, name) < 0:
                raise InputError(f"--{name} must not be negative, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise InputError(f"--max_steps must be at least 1, got {self.max_steps}")
        if not 0 <= self.warmup_ratio < 1:
            raise InputError(f"--warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise InputError(f"--learning_rate must be positive, got {self.learning_rate}")
        if self.push_to_hub:
            self.check_hub_push()

    def check_hub_push(self) -> None:
        """What --push_to_hub needs, checked before training rather than after it: a repo id and a token."""
        if not self.hub_model_id:
            raise InputError("--push_to_hub needs --hub_model_id ORG/NAME")
        try:
            validate_repo_id(self.hub_model_id)
        except HFValidationError:
            raise InputError(f"--hub_model_id {self.hub_model_id}: not a Hub repo id (org/name)") from None
        if get_token() is None:
            raise InputError("--push_to_hub: no Hugging Face token (set HF_TOKEN or run `hf auth login`)")

    @property
    def greater_is_better(self) -> bool:
        return not self.metric_for_best_model.endswith("loss")


def stage_default(name: str, value):
    """A stage's own default for a flag of TrainingArguments, keeping the flag's help."""
    return field(default=value, metadata=TrainingArguments.__dataclass_fields__[name].metadata)


@dataclass(kw_only=True)
class AffectArguments(TrainingArguments):
    """Flags of the stages that learn the ABAW tasks from Aff-Wild2 labels (finetune, tmf)."""

    data: str = field(metadata={"help": "Aff-Wild2 (or SynthAffect) folder: cropped_aligned/ and the annotations."})
    tasks: str = field(
        metadata={
            "help": "The paper trains one model per track: --tasks au, expr or va. Several, comma-separated "
            "(au,expr,va), give one multi-task model; a video in the validation set of any of them is then left out "
            "of training."
        }
    )
    au_positive_weighting: bool = field(
        default=False,
        metadata={
            "help": "AU loss: weight the positive term of each AU's cross-entropy by negatives/positives (the "
            "package's earlier default), which moves every AU's optimal operating point to 50/50, instead of Eq. 1's "
            "weight N_max/N_j on both terms. Off by default because Eq. 1 weights both terms."
        },
    )

    fold: str = field(
        default=OFFICIAL_SPLIT,
        metadata={
            "help": "Validation split: 'official' (the released Train/Validation sets), or fold i (1..--num_folds) of "
            "the video-level cross-validation over the labelled train + validation videos of --tasks (the paper's "
            "Tables 1-3; `abaw cross-validate` runs them all)."
        },
    )
    num_folds: int = field(default=5, metadata={"help": "Folds of the cross-validation (the paper's 5)."})
    fold_seed: int = field(
        default=0,
        metadata={
            "help": "Seed of the fold assignment, apart from --seed: changing the training seed keeps the folds."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        self.tasks = ",".join(self.task_list)
        if self.num_folds < 2:
            raise InputError(f"--num_folds must be at least 2, got {self.num_folds}")
        self.fold = str(self.fold).strip()  # YAML may give a number
        if self.fold != OFFICIAL_SPLIT and not (self.fold.isdigit() and 1 <= int(self.fold) <= self.num_folds):
            raise InputError(
                f"--fold must be {OFFICIAL_SPLIT!r} or a fold number 1..{self.num_folds} (--num_folds), "
                f"got {self.fold!r}"
            )

    @property
    def fold_number(self) -> int | None:
        """The 1-based fold this run validates on; None for the official split."""
        return None if self.fold == OFFICIAL_SPLIT else int(self.fold)

    @property
    def task_list(self) -> list[str]:
        names = self.tasks.split(",") if isinstance(self.tasks, str) else self.tasks  # YAML may give a list
        try:
            return validate_tasks([name.strip() for name in names if name.strip()])
        except ValueError as error:
            raise InputError(f"--tasks: {error}") from None


Arguments = TypeVar("Arguments", bound=TrainingArguments)


def parse_arguments(
    arguments_class: type[Arguments], argv: Sequence[str] | None = None, prog: str | None = None
) -> Arguments:
    """Parse a stage's flags (each as `--batch_size` or `--batch-size`); `--config file.yaml` gives values for any of
    them, and flags on the command line win."""
    parser = HfArgumentParser(arguments_class, prog=prog, description=arguments_class.__doc__)
    parser.add_argument(
        "--config", metavar="FILE.yaml", help="YAML file of flag values (keys are flag names); command-line flags win."
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    config_parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    config_parser.add_argument("--config")
    config_file = config_parser.parse_known_args(argv)[0].config
    if config_file:
        values = read_config_file(config_file, arguments_class)
        parser.set_defaults(**values)
        for action in parser._actions:  # a value from the file satisfies a required flag
            if action.dest in values:
                action.required = False
    return parser.parse_args_into_dataclasses(argv)[0]


def read_config_file(path: str, arguments_class: type) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such config file")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not a valid YAML file ({' '.join(str(error).split())})") from None
    if not isinstance(values, dict):
        raise InputError(f"{path}: expected a mapping of flag names to values")
    values = {str(name).replace("-", "_"): value for name, value in values.items()}
    unknown = sorted(set(values) - {field.name for field in dataclasses.fields(arguments_class)})
    if unknown:
        raise InputError(f"{path}: unknown setting(s) {', '.join(unknown)} (see --help for the flags)")
    return values


def run_main(main: Callable[[], int]) -> None:
    """Entry point of `python -m` / `accelerate launch -m`: a user's mistake is one line on stderr and exit code 2."""
    try:
        sys.exit(main())
    except InputError as error:
        # One write call: under `accelerate launch` every process reports, and the lines must not interleave.
        sys.stderr.write(f"error: {error}\n")
        sys.stderr.flush()
        sys.exit(2)
