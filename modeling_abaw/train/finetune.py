"""Stage 2: frame-wise fine-tuning of FaceMAEForAffect on Aff-Wild2 (paper Sec. 3.1 and 4.1).

Starts from a pre-trained FaceMAE (`--model`: the pretrain stage's output, a converted MAE-Face checkpoint, a Hub id)
and learns `--tasks` on the training frames that have a face crop and a label, with the losses weighted by the
training split's class frequencies. Validation: the ABAW metrics on every frame of the validation videos, raw and
after the model config's smoothing policy. The paper: AdamW, batch 512, learning rate 1e-4.

    accelerate launch -m modeling_abaw.train.finetune --data Aff-Wild2/ --model runs/pretrain/best --tasks au \
        --output_dir runs/finetune-au
"""

from dataclasses import dataclass, field

from ..data import AffWild2, FrameDataset
from ..errors import InputError
from ..evaluation import abaw_scores, affect_predictions, gather_predictions
from ..modeling_face_mae import FaceMAEForAffect, face_image_processor
from .arguments import AffectArguments, parse_arguments, run_main, stage_default
from .checkpointing import load_model
from .labels import label_inputs, loss_weights
from .loop import make_accelerator, train
from .transforms import FaceTransform


@dataclass(kw_only=True)
class FinetuneArguments(AffectArguments):
    """Frame-wise fine-tuning of a pre-trained FaceMAE for AU, EXPR and/or VA (defaults: the paper's)."""

    model: str = field(
        metadata={"help": "Pre-trained FaceMAE checkpoint: folder (e.g. the pretrain stage's best/) or Hub id."}
    )
    min_crop_scale: float = field(default=0.8, metadata={"help": "Smallest area fraction of the random crops."})
    batch_size: int = stage_default("batch_size", 512)
    num_epochs: int = stage_default("num_epochs", 10)
    learning_rate: float = stage_default("learning_rate", 1e-4)

    def __post_init__(self):
        if not 0 < self.min_crop_scale <= 1:
            raise InputError(f"--min_crop_scale must be in (0, 1], got {self.min_crop_scale}")
        super().__post_init__()


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_arguments(FinetuneArguments, argv, prog)
    accelerator = make_accelerator(args)
    tasks = args.task_list

    data = AffWild2(args.data)
    train_frames, eval_frames = data.frame_table("train", tasks), data.frame_table("validation", tasks)
    model, origin = load_model(
        FaceMAEForAffect, args.model, args.verbose, tasks=tasks, **loss_weights(train_frames, tasks)
    )
    config = model.config
    processor = face_image_processor(config)
    train_set = FrameDataset(
        train_frames, FaceTransform(processor, args.min_crop_scale, flip=True), tasks, labelled_only=True
    )
    eval_set = FrameDataset(eval_frames, FaceTransform(processor), tasks)

    def compute_loss(model, batch):
        return model(pixel_values=batch["pixel_values"], **label_inputs(batch, tasks)).loss

    def evaluate(model, dataloader):
        def forward(batch):
            return {"index": batch["index"], **affect_predictions(model(pixel_values=batch["pixel_values"]), tasks)}

        predictions = gather_predictions(accelerator, model, dataloader, forward)
        rows = eval_set.indices[predictions.pop("index")]
        return abaw_scores(eval_frames, rows, predictions, config.smoothing_policy)

    train(accelerator, args, model, origin, train_set, eval_set, compute_loss, evaluate)
    return 0


if __name__ == "__main__":
    run_main(main)
