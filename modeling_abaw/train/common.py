"""What the three training stages share: arguments, the Accelerator set-up, the training loop, evaluation,
checkpoints with exact resumption, logging and saving Hub-ready models.

A stage builds its datasets, its model, a `compute_loss(model, batch)` and an `evaluate(model, dataloader)`, and
hands them to `train`, which writes:

    <output_dir>/
        checkpoints/step_<N>/     accelerator.save_state() + training_state.json; the last --save_total_limit are kept
        best/, final/             save_pretrained() folders (config with auto_map, safetensors, modeling code, image
                                  processor for FaceMAE) with eval_results.json
        history.json              training loss and learning rate per logging step, metrics per evaluation
        logs/                     TensorBoard event files (Accelerate trackers)
        process_info/rank_<i>.json   with --record_process_info: the samples each process trained on and a checksum
                                  of its parameters at the end

The output folder must be on a filesystem that every process (every node) sees.
"""

import argparse
import dataclasses
import hashlib
import json
import math
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import datasets
import numpy as np
import torch
import yaml
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers import HfArgumentParser, PreTrainedModel, get_cosine_schedule_with_warmup

from ..data.affwild2 import au_pos_weights, expr_class_weights, label_key
from ..errors import InputError
from ..io import replace_directory, write_json
from ..tasks import AU, EXPR, validate_tasks

STATE_FILE = "training_state.json"
EVAL_RESULTS_FILE = "eval_results.json"
HISTORY_FILE = "history.json"

# ----------------------------------------------------------------------------------------------------------------------
# Arguments


@dataclass(kw_only=True)
class TrainingArguments:
    """Flags shared by every stage. Each stage's dataclass adds its own flags and sets the paper's defaults."""

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
    num_workers: int = field(default=4, metadata={"help": "DataLoader worker processes per training process."})
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
    record_process_info: bool = field(
        default=False,
        metadata={"help": "Debug: each process writes process_info/rank_<i>.json (samples seen, parameter checksum)."},
    )

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
    tasks: str = field(default="au,expr,va", metadata={"help": "Comma-separated tasks to learn: au, expr, va."})

    def __post_init__(self):
        super().__post_init__()
        self.tasks = ",".join(self.task_list)

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
    """Parse a stage's flags; `--config file.yaml` gives values for any of them, and flags on the command line win."""
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
    values = yaml.safe_load(path.read_text())
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
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


# ----------------------------------------------------------------------------------------------------------------------
# Set-up: Accelerator, data, model, optimizer


def make_accelerator(args: TrainingArguments) -> Accelerator:
    """The Accelerator of a stage, after which everything is seeded."""
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=args.output_dir,
        # `train` steps the scheduler once per optimizer step, so its length is counted in optimizer steps.
        step_scheduler_with_optimizer=False,
        # The order of an epoch depends only on (seed, epoch), so a resumed run sees the same batches.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
    )
    devices_times_steps = accelerator.num_processes * args.gradient_accumulation_steps
    if args.batch_size % devices_times_steps:
        raise InputError(
            f"--batch_size {args.batch_size} must be a multiple of processes x gradient_accumulation_steps "
            f"({accelerator.num_processes} x {args.gradient_accumulation_steps})"
        )
    set_seed(args.seed)
    return accelerator


class IndexedDataset(Dataset):
    """Adds each item's `index` in `dataset`, and draws the item's random augmentation from torch's RNG seeded with
    (seed, epoch, index): augmentation then depends neither on the worker, the process nor the order of loading, so
    a resumed run sees the same images, and the training process's own RNG (dropout, MAE masks) is left untouched."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        seed = int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0])
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            item = self.dataset[index]
        return {**item, "index": index}


def make_dataloader(dataset: Dataset, batch_size: int, args: TrainingArguments, train: bool) -> DataLoader:
    """Training loaders shuffle and drop the last incomplete batch, so that processes get disjoint, equal shards."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        drop_last=train,
        num_workers=args.num_workers,
        # Worker seeds come from this generator, not from the global RNG, which checkpoints restore.
        generator=torch.Generator().manual_seed(args.seed),
    )


def random_resized_box(
    width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float] = (3 / 4, 4 / 3)
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a random crop covering a `scale` fraction of the area with an aspect ratio in
    `ratio` (log-uniform), as in MAE's RandomResizedCrop; the whole image when 10 draws do not fit."""
    area = width * height
    for _ in range(10):
        target_area = area * torch.empty(()).uniform_(*scale).item()
        aspect = math.exp(torch.empty(()).uniform_(math.log(ratio[0]), math.log(ratio[1])).item())
        crop_width, crop_height = round(math.sqrt(target_area * aspect)), round(math.sqrt(target_area / aspect))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            left = int(torch.randint(0, width - crop_width + 1, ()).item())
            top = int(torch.randint(0, height - crop_height + 1, ()).item())
            return left, top, left + crop_width, top + crop_height
    return 0, 0, width, height


class FaceTransform:
    """PIL face image -> (3, H, W) tensor through the model's image processor (resize, MAE normalisation), after an
    optional random resized crop (area fraction in [min_crop_scale, 1]) and horizontal flip for training."""

    def __init__(self, processor, min_crop_scale: float | None = None, flip: bool = False):
        self.processor, self.min_crop_scale, self.flip = processor, min_crop_scale, flip

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if self.min_crop_scale is not None:
            image = image.crop(random_resized_box(*image.size, scale=(self.min_crop_scale, 1.0)))
        if self.flip and torch.rand(()) < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return self.processor(image, return_tensors="pt")["pixel_values"][0]


def load_model(model_class: type[PreTrainedModel], name_or_path: str | None, **config_overrides) -> PreTrainedModel:
    """The model to train, with `config_overrides` applied to its config: from a checkpoint (folder or Hub id), new
    from a folder holding only config.json (to train from scratch at that size), or new with the paper's configuration
    when `name_or_path` is None."""
    if name_or_path is None:
        return model_class(model_class.config_class(**config_overrides))
    path = Path(name_or_path)
    if not path.exists() and (name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1):
        raise InputError(f"{name_or_path}: no such model folder (and not a Hub id of the form org/name)")
    # Rebuilding the config validates the overrides (e.g. the order of `tasks`).
    config = model_class.config_class.from_pretrained(name_or_path)
    config = model_class.config_class.from_dict({**config.to_dict(), **config_overrides})
    if path.is_dir() and not any(path.glob("*.safetensors")):
        return model_class(config)
    return model_class.from_pretrained(name_or_path, config=config)


def make_optimizer(model: nn.Module, args: TrainingArguments) -> torch.optim.AdamW:
    """AdamW with the weight decay on matrices only: biases and norm weights (1-d parameters) are not decayed (MAE)."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.ndim > 1], "weight_decay": args.weight_decay},
        {"params": [p for p in parameters if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2))


# ----------------------------------------------------------------------------------------------------------------------
# Affect tasks: loss weights, labels, predictions and the ABAW evaluation


def class_weights(frames: datasets.Dataset, tasks: Sequence[str]) -> dict[str, list[float]]:
    """The model config's loss weights from the training split's labels: `au_pos_weight`, `expr_class_weight`."""
    columns = frames.with_format("numpy")
    weights = {}
    if AU.name in tasks:
        weights["au_pos_weight"] = au_pos_weights(columns[label_key(AU.name)][:]).tolist()
    if EXPR.name in tasks:
        weights["expr_class_weight"] = expr_class_weights(columns[label_key(EXPR.name)][:]).tolist()
    return weights


def label_inputs(batch: Mapping, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
    """The model's label arguments (`au_labels`, ...) for `tasks`, from a batch."""
    return {label_key(task): batch[label_key(task)] for task in tasks}


# ----------------------------------------------------------------------------------------------------------------------
# Checkpoints, saved models, history


@dataclass
class TrainingState:
    """Where a run stands; saved as training_state.json in every checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches of `epoch` this process has consumed
    num_processes: int = 1
    best_metric: float | None = None
    best_step: int | None = None
    history: dict = field(default_factory=lambda: {"train": [], "eval": []})


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """The complete checkpoints `<output_dir>/checkpoints/step_<N>`, oldest first."""
    folders = (Path(output_dir) / "checkpoints").glob("step_*")
    complete = [path for path in folders if path.name[5:].isdigit() and (path / STATE_FILE).is_file()]
    return sorted(complete, key=lambda path: int(path.name[5:]))


def find_checkpoint(name: str, output_dir: str) -> Path:
    """The checkpoint that --resume_from_checkpoint names: a folder, or 'latest'."""
    if name == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise InputError(f"{Path(output_dir) / 'checkpoints'}: no checkpoint to resume from")
        return found[-1]
    if not (Path(name) / STATE_FILE).is_file():
        raise InputError(f"{name}: not a checkpoint folder (no {STATE_FILE})")
    return Path(name)


def save_checkpoint(accelerator: Accelerator, args: TrainingArguments, state: TrainingState) -> None:
    """`accelerator.save_state` into a temporary folder renamed to checkpoints/step_<N> once complete, so that an
    interrupted save never replaces a good checkpoint; then the oldest beyond --save_total_limit are deleted."""
    folder = Path(args.output_dir) / "checkpoints"
    temporary = folder / f".step_{state.step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(temporary)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json(temporary / STATE_FILE, dataclasses.asdict(state))
        replace_directory(temporary, folder / f"step_{state.step}")
        for old in list_checkpoints(args.output_dir)[: -args.save_total_limit]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def save_model(accelerator: Accelerator, model: nn.Module, directory: Path, results: dict) -> None:
    """`save_pretrained` (Hub-ready: config with auto_map, safetensors, modeling code, and the image processor of
    FaceMAE models) plus eval_results.json, written to a temporary folder that then replaces `directory`."""
    state_dict = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        temporary = directory.with_name(f".{directory.name}.tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(temporary, state_dict=state_dict)
        write_json(temporary / EVAL_RESULTS_FILE, results)
        replace_directory(temporary, directory)
    accelerator.wait_for_everyone()


def parameter_checksum(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer, to compare processes bit for bit."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def hyperparameters(args: TrainingArguments) -> dict:
    """The arguments as tracker hyper-parameters (scalars and strings only)."""
    return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in dataclasses.asdict(args).items()}


# ----------------------------------------------------------------------------------------------------------------------
# The training loop


def train(
    accelerator: Accelerator,
    args: TrainingArguments,
    model: PreTrainedModel,
    train_set: Dataset,
    eval_set: Dataset,
    compute_loss: Callable[[nn.Module, dict], torch.Tensor],
    evaluate: Callable[[nn.Module, DataLoader], dict[str, float]],
) -> TrainingState:
    """Train `model` with AdamW, warm-up and cosine decay; evaluate, checkpoint, log; save output/best and final.

    Batches carry `index`, the item's index in its dataset. `compute_loss(model, batch)` returns the loss of a batch;
    `evaluate(model, eval_dataloader)` returns validation metrics (gathered over processes) with
    --metric_for_best_model among them.
    """
    output_dir = Path(args.output_dir)
    checkpoint = find_checkpoint(args.resume_from_checkpoint, args.output_dir) if args.resume_from_checkpoint else None
    if not len(eval_set):
        raise InputError("the validation set is empty")
    micro_batch_size = args.batch_size // (accelerator.num_processes * args.gradient_accumulation_steps)
    train_set = IndexedDataset(train_set, args.seed)
    train_dataloader = make_dataloader(train_set, micro_batch_size, args, train=True)
    eval_dataloader = make_dataloader(IndexedDataset(eval_set, args.seed), micro_batch_size, args, train=False)
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, make_optimizer(model, args), train_dataloader, eval_dataloader
    )
    if not len(train_dataloader):
        raise InputError(f"the training set has {len(train_set)} samples, fewer than one batch of {args.batch_size}")
    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    total_steps = steps_per_epoch * args.num_epochs
    scheduler = accelerator.prepare(
        get_cosine_schedule_with_warmup(optimizer, round(args.warmup_ratio * total_steps), total_steps)
    )
    last_step = min(total_steps, args.max_steps or total_steps)

    state = TrainingState(num_processes=accelerator.num_processes)
    if checkpoint:
        state = TrainingState(**json.loads((checkpoint / STATE_FILE).read_text()))
        if state.num_processes != accelerator.num_processes:
            raise InputError(
                f"{checkpoint} was written by {state.num_processes} processes; resume it with as many "
                f"(this run has {accelerator.num_processes})"
            )
        accelerator.load_state(checkpoint)  # weights, optimizer, scheduler, RNG states
        accelerator.print(f"Resumed from {checkpoint} at step {state.step}")
        if state.batches_in_epoch == len(train_dataloader):
            state.epoch, state.batches_in_epoch = state.epoch + 1, 0

    accelerator.init_trackers("logs", config=hyperparameters(args))
    accelerator.print(
        f"{len(train_set)} training and {len(eval_set)} validation samples; {accelerator.num_processes} process(es) "
        f"x {micro_batch_size} samples x {args.gradient_accumulation_steps} accumulation step(s) = batch "
        f"{args.batch_size}; {steps_per_epoch} steps per epoch, {last_step} steps, learning rate {args.learning_rate:g}"
    )

    def write_history() -> None:
        if accelerator.is_main_process:
            history = {"metric_for_best_model": args.metric_for_best_model, **state.history}
            write_json(output_dir / HISTORY_FILE, history)

    def evaluate_and_keep_best(epoch: float) -> None:
        metrics = evaluate(model, eval_dataloader)
        model.train()
        if args.metric_for_best_model not in metrics:
            raise InputError(
                f"--metric_for_best_model {args.metric_for_best_model!r} is not a validation metric; "
                f"choose from {', '.join(metrics)}"
            )
        results = {"step": state.step, "epoch": epoch, **metrics}
        state.history["eval"].append(results)
        accelerator.log({f"eval/{name}": value for name, value in metrics.items()}, step=state.step)
        summary = {name: value for name, value in metrics.items() if "/" not in name.removeprefix("smoothed/")}
        accelerator.print(f"step {state.step} validation: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items()))
        value, best = metrics[args.metric_for_best_model], state.best_metric
        if best is None or (value > best if args.greater_is_better else value < best):
            state.best_metric, state.best_step = value, state.step
            save_model(accelerator, model, output_dir / "best", results)
        write_history()

    progress = tqdm(total=last_step, initial=state.step, desc="training", disable=not accelerator.is_main_process)
    loss_sum, loss_count = torch.zeros((), device=accelerator.device), 0
    trained_indices = []
    for epoch in range(state.epoch, args.num_epochs):
        if state.step >= last_step:
            break
        model.train()
        train_set.set_epoch(epoch)
        train_dataloader.set_epoch(epoch)
        skip = state.batches_in_epoch if epoch == state.epoch else 0
        batches = accelerator.skip_first_batches(train_dataloader, skip) if skip else train_dataloader
        for batches_done, batch in enumerate(batches, start=skip + 1):
            if args.record_process_info:
                trained_indices += batch["index"].tolist()
            with accelerator.accumulate(model):
                loss = compute_loss(model, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            loss_sum += loss.detach().float()
            loss_count += 1
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            state.step, state.epoch, state.batches_in_epoch = state.step + 1, epoch, batches_done
            progress.update()
            done, end_of_epoch = state.step == last_step, batches_done == len(train_dataloader)
            epoch_progress = epoch + batches_done / len(train_dataloader)

            if done or state.step % args.logging_steps == 0:
                totals = accelerator.reduce(torch.stack([loss_sum, loss_sum.new_tensor(loss_count)]), "sum")
                record = {
                    "step": state.step,
                    "epoch": epoch_progress,
                    "loss": (totals[0] / totals[1]).item(),
                    "learning_rate": scheduler.get_last_lr()[0],
                }
                state.history["train"].append(record)
                accelerator.log(
                    {f"train/{name}": value for name, value in record.items() if name != "step"}, step=state.step
                )
                progress.set_postfix(loss=f"{record['loss']:.4f}")
                loss_sum.zero_()
                loss_count = 0
                write_history()
            if done or (state.step % args.eval_steps == 0 if args.eval_steps else end_of_epoch):
                evaluate_and_keep_best(epoch_progress)
            if done or (state.step % args.save_steps == 0 if args.save_steps else end_of_epoch):
                save_checkpoint(accelerator, args, state)
            if done:
                break
    progress.close()

    if not state.history["eval"] or state.history["eval"][-1]["step"] != state.step:
        evaluate_and_keep_best(state.epoch + state.batches_in_epoch / len(train_dataloader))
    save_model(accelerator, model, output_dir / "final", state.history["eval"][-1])
    if args.record_process_info:
        write_json(
            output_dir / "process_info" / f"rank_{accelerator.process_index}.json",
            {
                "process_index": accelerator.process_index,
                "num_processes": accelerator.num_processes,
                "device": str(accelerator.device),
                "train_indices": trained_indices,
                "parameter_checksum": parameter_checksum(accelerator.unwrap_model(model)),
            },
        )
    accelerator.print(f"Saved {output_dir / 'final'} and {output_dir / 'best'} (step {state.best_step})")
    accelerator.end_training()
    return state
