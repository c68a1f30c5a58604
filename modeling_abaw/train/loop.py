"""The training loop the three stages share, and its set-up: the Accelerator, data loaders, AdamW parameter groups.

A stage builds its datasets, its model, a `compute_loss(model, batch)` and an `evaluate(model, dataloader)`, and
hands them to `train`, which checkpoints (see `checkpointing`), keeps the best model and writes:

    <output_dir>/
        checkpoints/step_<N>/, best/, final/   see `checkpointing`
        history.json              training loss and learning rate per logging step, metrics per evaluation, the
                                  best model's step and the stage's run information (tasks, data split)
        logs/                     TensorBoard event files (Accelerate trackers)
        process_info/rank_<i>.json   with --record_process_info: the samples each process trained on and a checksum
                                  of its parameters at the end

The output folder must be on a filesystem that every process (every node) sees.
"""

import dataclasses
import math
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers import PreTrainedModel, get_cosine_schedule_with_warmup

from ..data import IndexedDataset
from ..errors import InputError
from ..hub.publish import push_model_folder
from ..io import write_json
from ..progress import no_library_bars_off_terminal
from . import HISTORY_FILE
from .arguments import TrainingArguments
from .checkpointing import (
    TrainingState,
    find_checkpoint,
    list_checkpoints,
    parameter_checksum,
    read_training_state,
    save_checkpoint,
    save_model,
    training_record,
)

# ----------------------------------------------------------------------------------------------------------------------
# Set-up: Accelerator, data, optimizer


def make_accelerator(args: TrainingArguments) -> Accelerator:
    """The Accelerator of a stage, after which everything is seeded."""
    # Off a terminal the loop prints plain lines (see `train`), and the libraries' bars are turned off.
    no_library_bars_off_terminal()
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


def parameter_groups(
    model: nn.Module,
    weight_decay: float,
    lr_scale: Callable[[str], float] | None = None,
    no_weight_decay: Callable[[str], bool] | None = None,
) -> list[dict]:
    """AdamW parameter groups of the trainable parameters, one per (learning-rate scale, weight decay), as MAE's
    `param_groups_lrd`: no weight decay on 1-d parameters (biases, norm weights) nor on the names `no_weight_decay`
    picks; `lr_scale(name)` scales a parameter's learning rate (layer-wise decay; default 1)."""
    groups: dict[tuple[float, float], dict] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        decay = 0.0 if parameter.ndim <= 1 or (no_weight_decay and no_weight_decay(name)) else weight_decay
        scale = lr_scale(name) if lr_scale else 1.0
        group = groups.setdefault((scale, decay), {"params": [], "weight_decay": decay, "lr_scale": scale})
        group["params"].append(parameter)
    return list(groups.values())


def make_optimizer(groups: list[dict], args: TrainingArguments) -> torch.optim.AdamW:
    """AdamW over `parameter_groups`, each group at --learning_rate times its `lr_scale`. The schedulers of
    transformers are LambdaLRs, which multiply each group's own initial learning rate: the scales hold all along."""
    for group in groups:
        group["lr"] = args.learning_rate * group["lr_scale"]
    return torch.optim.AdamW(groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2))


def hyperparameters(args: TrainingArguments) -> dict:
    """The arguments as tracker hyper-parameters (scalars and strings only)."""
    return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in dataclasses.asdict(args).items()}


# ----------------------------------------------------------------------------------------------------------------------
# The training loop


def train(
    accelerator: Accelerator,
    args: TrainingArguments,
    model: PreTrainedModel,
    model_origin: str,
    train_set: Dataset,
    eval_set: Dataset,
    compute_loss: Callable[[nn.Module, dict], torch.Tensor],
    evaluate: Callable[[nn.Module, DataLoader], dict[str, float]],
    optimizer_groups: list[dict] | None = None,
    run_info: dict | None = None,
) -> TrainingState:
    """Train `model` with AdamW, warm-up and cosine decay; evaluate, checkpoint, log; save output/best and final.

    `model_origin` says where its weights come from (`load_model`'s line); a resumed run says which checkpoint
    instead. Batches carry `index`, the item's index in its dataset. `compute_loss(model, batch)` returns the loss of
    a batch; `evaluate(model, eval_dataloader)` returns validation metrics (gathered over processes) with
    --metric_for_best_model among them. `optimizer_groups` are the AdamW `parameter_groups` (default: one learning
    rate, weight decay on matrices). `run_info` (plain JSON values, e.g. the data split) is recorded in history.json
    and, with the stage's arguments, in the saved models' training_info.json.
    A non-finite loss on any process stops every process before its update.
    """
    output_dir = Path(args.output_dir)
    training_info = training_record(args, run_info)
    checkpoint = find_checkpoint(args.resume_from_checkpoint, args.output_dir) if args.resume_from_checkpoint else None
    if not len(eval_set):
        raise InputError("the validation set is empty")
    micro_batch_size = args.batch_size // (accelerator.num_processes * args.gradient_accumulation_steps)
    train_set = IndexedDataset(train_set, args.seed)
    train_dataloader = make_dataloader(train_set, micro_batch_size, args, train=True)
    eval_dataloader = make_dataloader(IndexedDataset(eval_set, args.seed), micro_batch_size, args, train=False)
    optimizer = make_optimizer(optimizer_groups or parameter_groups(model, args.weight_decay), args)
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )
    if not len(train_dataloader):
        raise InputError(f"the training set has {len(train_set)} samples, fewer than one batch of {args.batch_size}")
    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    total_steps = steps_per_epoch * args.num_epochs
    scheduler = accelerator.prepare(
        get_cosine_schedule_with_warmup(optimizer, round(args.warmup_ratio * total_steps), total_steps)
    )
    last_step = min(total_steps, args.max_steps or total_steps)

    def log(text: str) -> None:
        if accelerator.is_main_process:
            tqdm.write(text)  # above the progress bar, when there is one

    state = TrainingState(num_processes=accelerator.num_processes)
    if checkpoint:
        state = read_training_state(checkpoint, accelerator.num_processes)
        accelerator.load_state(checkpoint)  # weights, optimizer, scheduler, RNG states
        log(f"Resuming from {checkpoint} (step {state.step})")
        if state.batches_in_epoch == len(train_dataloader):
            state.epoch, state.batches_in_epoch = state.epoch + 1, 0
    else:
        log(model_origin)

    accelerator.init_trackers("logs", config=hyperparameters(args))
    log(
        f"{len(train_set)} training and {len(eval_set)} validation samples; {accelerator.num_processes} process(es) "
        f"x {micro_batch_size} samples x {args.gradient_accumulation_steps} accumulation step(s) = batch "
        f"{args.batch_size}; {steps_per_epoch} steps per epoch, {last_step} steps, learning rate {args.learning_rate:g}"
    )

    def write_history() -> None:
        if accelerator.is_main_process:
            history = {
                "metric_for_best_model": args.metric_for_best_model,
                "best_step": state.best_step,  # the eval entry of that step is what best/ holds
                **(run_info or {}),
                **state.history,
            }
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
        log(f"step {state.step} validation: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items()))
        value, best = metrics[args.metric_for_best_model], state.best_metric
        if best is None or (value > best if args.greater_is_better else value < best):
            state.best_metric, state.best_step = value, state.step
            save_model(accelerator, model, output_dir / "best", results, training_info)
        write_history()

    # A bar on a terminal; elsewhere (a log file) a plain line at every logging step.
    show_bar = accelerator.is_main_process and sys.stderr.isatty()
    progress = tqdm(total=last_step, initial=state.step, desc="training", disable=not show_bar)
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
                # Summed over processes, so that all of them stop together, before an update spreads the NaN.
                total_loss = accelerator.reduce(loss.detach().float().reshape(1), "sum").item()
                if not math.isfinite(total_loss):
                    progress.close()
                    accelerator.end_training()
                    checkpoints = list_checkpoints(output_dir)
                    kept = f"the last checkpoint is {checkpoints[-1]}" if checkpoints else "no checkpoint was saved"
                    raise InputError(f"non-finite loss ({total_loss}) at step {state.step + 1}; {kept}")
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
                    # The peak group's (the heads' under layer-wise decay): --learning_rate on the schedule.
                    "learning_rate": max(scheduler.get_last_lr()),
                }
                state.history["train"].append(record)
                accelerator.log(
                    {f"train/{name}": value for name, value in record.items() if name != "step"}, step=state.step
                )
                if show_bar:
                    progress.set_postfix(loss=f"{record['loss']:.4f}")
                else:
                    log(
                        f"step {state.step}/{last_step} (epoch {epoch_progress:.2f}): loss {record['loss']:.4f}, "
                        f"learning rate {record['learning_rate']:.3g}"
                    )
                loss_sum.zero_()
                loss_count = 0
                write_history()
            if done or (state.step % args.eval_steps == 0 if args.eval_steps else end_of_epoch):
                evaluate_and_keep_best(epoch_progress)
            if done or (state.step % args.save_steps == 0 if args.save_steps else end_of_epoch):
                save_checkpoint(accelerator, args.output_dir, args.save_total_limit, state)
            if done:
                break
    progress.close()

    if not state.history["eval"] or state.history["eval"][-1]["step"] != state.step:
        evaluate_and_keep_best(state.epoch + state.batches_in_epoch / len(train_dataloader))
    save_model(accelerator, model, output_dir / "final", state.history["eval"][-1], training_info)
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
    log(f"Saved {output_dir / 'final'} and {output_dir / 'best'} (step {state.best_step})")
    accelerator.end_training()  # flushes the TensorBoard logs the push uploads
    if args.push_to_hub and accelerator.is_main_process:
        # Only once the run is complete; a failure is one line (exit 2) and leaves best/ and final/ as they are.
        push_model_folder(
            output_dir / "best", args.hub_model_id, push_backbones=args.hub_model_id, logs=True, report=log
        )
    return state
