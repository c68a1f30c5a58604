"""Stage 3: TMFForAffect, the transformer fusing per-frame visual and audio features over clips (paper Sec. 3.2, 4.1).

Reads clips of K consecutive frames (the config's `clip_length`, K=100 in the paper) of the training videos from a
feature cache (`abaw extract-features`) and learns `--tasks` from their per-frame labels. The config's `modalities`
and `backbones` are copied from the cache, so the checkpoint says how to rebuild its inputs; `--modalities` picks the
fused ones, by default the paper's best per task (Table 8, `AffectTask.tmf_modalities`): mae for AU; mae, hubert and
vggish for EXPR and VA. The VA loss is a CCC over the global batch (see `affect_loss`). Validation: the ABAW metrics
on every frame of the validation videos, raw and after the config's smoothing policy. The paper: AdamW, batch 32,
learning rate 1e-4, 20 epochs.

    accelerate launch -m modeling_abaw.train.tmf --data Aff-Wild2/ --features features/ --tasks expr \
        --output_dir runs/tmf-expr
"""

from dataclasses import dataclass, field

from ..data import AffWild2, ClipDataset
from ..errors import InputError
from ..evaluation import evaluate_clips, tmf_inputs
from ..features import FeatureCache
from ..modeling_tmf import TMFForAffect
from ..tasks import TASKS
from .affect_loss import affect_loss
from .arguments import AffectArguments, parse_arguments, run_main, stage_default
from .checkpointing import load_model
from .labels import loss_weights, run_info, training_and_validation_frames
from .loop import make_accelerator, train


@dataclass(kw_only=True)
class TMFArguments(AffectArguments):
    """Training of the multi-modal temporal fusion model on cached features (the paper's defaults). The VA loss
    (CCC) is a statistic of the global batch of all processes; with --gradient_accumulation_steps, of each
    micro-step's (processes x micro-batch), not of the whole step."""

    stage = "tmf"

    features: str = field(metadata={"help": "Feature cache folder (written by `abaw extract-features`)."})
    modalities: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated cached modalities to fuse. Default: the paper's best per task (Table 8): mae for "
            "au; mae,hubert,vggish for expr and va; for several tasks, the union."
        },
    )
    model: str | None = field(
        default=None,
        metadata={
            "help": "TMF checkpoint to continue from (folder or Hub id), or a folder with only config.json setting "
            "the architecture (hidden_size, num_hidden_layers, dropout, clip_length, ...); default: the paper's."
        },
    )
    eval_stride: int | None = field(
        default=None,
        metadata={
            "help": "Frames between the starts of consecutive validation clips. Default: the clip length (clips tile "
            "the video without overlap); a smaller stride overlaps the clips and averages their predictions per frame."
        },
    )
    batch_size: int = stage_default("batch_size", 32)
    num_epochs: int = stage_default("num_epochs", 20)
    learning_rate: float = stage_default("learning_rate", 1e-4)

    @property
    def modality_list(self) -> list[str]:
        """--modalities, or the Table 8 modalities of the run's tasks (their union, in the registry's order)."""
        if self.modalities is None:
            return list(dict.fromkeys(name for task in self.task_list for name in TASKS[task].tmf_modalities))
        names = self.modalities.split(",") if isinstance(self.modalities, str) else self.modalities
        return [name.strip() for name in names if name.strip()]


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_arguments(TMFArguments, argv, prog)
    accelerator = make_accelerator(args)
    tasks = args.task_list

    cache = FeatureCache(args.features)
    unknown = [name for name in args.modality_list if name not in cache.modalities]
    if args.modalities is None and unknown:
        raise InputError(
            f"{args.features} holds {', '.join(cache.modalities)}, not {', '.join(unknown)} of the default modalities "
            f"of --tasks {args.tasks} ({','.join(args.modality_list)}, the paper's Table 8); pass --modalities"
        )
    if unknown or not args.modality_list:
        raise InputError(f"--modalities {args.modalities!r}: {args.features} holds {', '.join(cache.modalities)}")
    data = AffWild2(args.data)
    train_frames, eval_frames, split_note = training_and_validation_frames(
        data, tasks, args.fold_number, args.num_folds, args.fold_seed
    )
    if split_note:
        accelerator.print(split_note)
    missing = sorted(set(data.videos(["train", "validation"], tasks)) - set(cache.videos))
    if missing:
        raise InputError(f"{args.features}: no features for {len(missing)} video(s), e.g. {missing[0]!r}")
    model, origin = load_model(
        TMFForAffect,
        args.model,
        args.verbose,
        modalities=cache.modalities,
        used_modalities=args.modality_list,
        backbones=cache.backbones,
        tasks=tasks,
        **loss_weights(train_frames, tasks, args.au_positive_weighting),
    )
    config = model.config
    train_set = ClipDataset(train_frames, cache.load_features, tasks, clip_length=config.clip_length)
    eval_set = ClipDataset(
        eval_frames, cache.load_features, tasks, clip_length=config.clip_length, stride=args.eval_stride
    )

    def compute_loss(model, batch):
        inputs = {**tmf_inputs(batch, config), "attention_mask": batch["attention_mask"]}
        return affect_loss(accelerator, model, inputs, batch, tasks)

    def evaluate(model, dataloader):
        return evaluate_clips(accelerator, model, dataloader, eval_set, eval_frames)

    train(
        accelerator,
        args,
        model,
        origin,
        train_set,
        eval_set,
        compute_loss,
        evaluate,
        run_info=run_info(args, eval_frames),
    )
    return 0


if __name__ == "__main__":
    run_main(main)
