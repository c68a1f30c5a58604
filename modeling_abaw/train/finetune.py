"""Stage 2: frame-wise fine-tuning of FaceMAEForAffect on Aff-Wild2 (paper Sec. 3.1 and 4.1).

Starts from a pre-trained FaceMAE (`--model`: the pretrain stage's output, a converted MAE-Face checkpoint, a Hub id)
and learns `--tasks` (one track per model, as the paper) on the training frames that have a face crop and a label,
with the losses weighted by the training split's class frequencies (Eq. 1, 2) and the VA loss a CCC over the global
batch (Eq. 3). Validation: the ABAW metrics on every frame of the validation videos, raw and after the model config's
smoothing policy. The paper: AdamW, batch 512, learning rate 1e-4. The encoder is fine-tuned the MAE way
(facebookresearch/mae main_finetune.py, its ViT-B recipe; MAE-Face): stochastic depth, layer-wise learning-rate
decay, heads initialised with std 2e-5, learnable position embeddings.

    accelerate launch -m modeling_abaw.train.finetune --data Aff-Wild2/ --model runs/pretrain/best --tasks au \
        --output_dir runs/finetune-au
"""

from dataclasses import dataclass, field

from ..data import AffWild2, FrameDataset
from ..errors import InputError
from ..evaluation import evaluate_face_crops
from ..modeling_face_mae import FaceMAEForAffect, face_image_processor
from .affect_loss import affect_loss
from .arguments import AffectArguments, parse_arguments, run_main, stage_default
from .checkpointing import load_model
from .labels import loss_weights, run_info, training_and_validation_frames
from .loop import make_accelerator, parameter_groups, train
from .transforms import FaceTransform


@dataclass(kw_only=True)
class FinetuneArguments(AffectArguments):
    """Frame-wise fine-tuning of a pre-trained FaceMAE for one track (AU, EXPR or VA; the paper's defaults). The VA
    loss (CCC) is a statistic of the global batch of all processes; with --gradient_accumulation_steps, of each
    micro-step's (processes x micro-batch), not of the whole step."""

    stage = "finetune"

    model: str = field(
        metadata={"help": "Pre-trained FaceMAE checkpoint: folder (e.g. the pretrain stage's best/) or Hub id."}
    )
    min_crop_scale: float = field(
        default=1.0,
        metadata={
            "help": "Smallest area fraction of MAE's random resized crops (with aspect-ratio jitter 3/4-4/3); 1 (the "
            "default) keeps the aligned crop whole and flips only: action units are small displacements of features "
            "that alignment puts at fixed places, which rescaled crops move (on SynthAffect, crops of area 0.8-1 kept "
            "a fine-tuned model near chance on the validation AUs)."
        },
    )
    drop_path_rate: float = field(
        default=0.1,
        metadata={
            "help": "Stochastic depth of the encoder layers, rising linearly to this rate at the last (0.1: MAE-Face, "
            "MAE's ViT-B recipe); 0 disables."
        },
    )
    layer_decay: float = field(
        default=0.65,
        metadata={
            "help": "Layer-wise learning-rate decay: encoder layer i (1..L) learns at the learning rate x "
            "decay^(L+1-i), the embeddings at x decay^(L+1), fc_norm and the heads at the full rate "
            "(facebookresearch/mae's ViT-B recipe: 0.65); 1 disables."
        },
    )
    head_init_std: float = field(
        default=2e-5, metadata={"help": "Std of the truncated-normal init of new affect heads (MAE's 2e-5)."}
    )
    freeze_position_embeddings: bool = field(
        default=False,
        metadata={"help": "Keep the pre-trained position embeddings fixed (MAE fine-tuning learns them)."},
    )
    batch_size: int = stage_default("batch_size", 512)
    num_epochs: int = stage_default("num_epochs", 10)
    learning_rate: float = stage_default("learning_rate", 1e-4)

    def __post_init__(self):
        if not 0 < self.min_crop_scale <= 1:
            raise InputError(f"--min_crop_scale must be in (0, 1], got {self.min_crop_scale}")
        if not 0 <= self.drop_path_rate < 1:
            raise InputError(f"--drop_path_rate must be in [0, 1), got {self.drop_path_rate}")
        if not 0 < self.layer_decay <= 1:
            raise InputError(f"--layer_decay must be in (0, 1], got {self.layer_decay}")
        if self.head_init_std <= 0:
            raise InputError(f"--head_init_std must be positive, got {self.head_init_std}")
        super().__post_init__()

    @property
    def recipe_overrides(self) -> dict:
        """The model config's MAE fine-tuning fields these flags set."""
        return {
            "drop_path_rate": self.drop_path_rate,
            "head_initializer_range": self.head_init_std,
            "learnable_position_embeddings": not self.freeze_position_embeddings,
        }


def layer_id(name: str, num_layers: int) -> int:
    """The layer of a FaceMAEForAffect parameter for layer-wise learning-rate decay (MAE's get_layer_id_for_vit): 0
    for the embeddings (patch embedding, cls token, position embeddings), i + 1 for encoder layer i, num_layers + 1
    for what follows (fc_norm, the heads)."""
    if name.startswith("vit.embeddings."):
        return 0
    if name.startswith("vit.layers."):
        return int(name.split(".")[2]) + 1
    return num_layers + 1


def layer_decay_groups(model: FaceMAEForAffect, weight_decay: float, layer_decay: float) -> list[dict]:
    """The AdamW parameter groups of MAE fine-tuning (util/lr_decay.py param_groups_lrd): learning rate x
    layer_decay^(num_layers + 1 - layer_id); no weight decay on 1-d parameters, the cls token and the position
    embeddings (MAE's no_weight_decay)."""
    num_layers = model.config.num_hidden_layers
    return parameter_groups(
        model,
        weight_decay,
        lr_scale=lambda name: layer_decay ** (num_layers + 1 - layer_id(name, num_layers)),
        no_weight_decay=lambda name: name.endswith(("cls_token", "position_embeddings")),
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_arguments(FinetuneArguments, argv, prog)
    accelerator = make_accelerator(args)
    tasks = args.task_list

    train_frames, eval_frames, split_note = training_and_validation_frames(
        AffWild2(args.data), tasks, args.fold_number, args.num_folds, args.fold_seed
    )
    if split_note:
        accelerator.print(split_note)
    model, origin = load_model(
        FaceMAEForAffect,
        args.model,
        args.verbose,
        tasks=tasks,
        **args.recipe_overrides,
        **loss_weights(train_frames, tasks, args.au_positive_weighting),
    )
    config = model.config
    processor = face_image_processor(config)
    train_set = FrameDataset(
        train_frames, FaceTransform(processor, args.min_crop_scale, flip=True), tasks, labelled_only=True
    )
    eval_set = FrameDataset(eval_frames, FaceTransform(processor), tasks)

    def compute_loss(model, batch):
        return affect_loss(accelerator, model, {"pixel_values": batch["pixel_values"]}, batch, tasks)

    def evaluate(model, dataloader):
        return evaluate_face_crops(accelerator, model, dataloader, eval_set, eval_frames)

    groups = layer_decay_groups(model, args.weight_decay, args.layer_decay)
    train(
        accelerator,
        args,
        model,
        origin,
        train_set,
        eval_set,
        compute_loss,
        evaluate,
        groups,
        run_info(args, eval_frames),
    )
    return 0


if __name__ == "__main__":
    run_main(main)
