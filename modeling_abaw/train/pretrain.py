"""Stage 1: MAE self-supervised pre-training of FaceMAEForPreTraining on face images (paper Sec. 3.1 and 4.1).

The MAE recipe: AdamW (betas 0.9, 0.95; weight decay 0.05) at lr = base_learning_rate x batch_size / 256 (the paper's
0.0024 at batch 4096), linear warm-up then cosine decay, 800 epochs, random resized crops (area 0.2-1) and
horizontal flips. A fixed share of the images is held out; its reconstruction loss (with fixed masks) picks
output/best.

    accelerate launch -m modeling_abaw.train.pretrain --data faces/ --output_dir runs/pretrain
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import InputError
from ..evaluation import gather_predictions
from ..media import IMAGE_EXTENSIONS
from ..modeling_face_mae import FaceMAEForPreTraining, face_image_processor
from .arguments import TrainingArguments, parse_arguments, run_main, stage_default
from .checkpointing import load_model
from .loop import make_accelerator, train
from .transforms import FaceTransform


@dataclass(kw_only=True)
class PretrainArguments(TrainingArguments):
    """MAE pre-training of FaceMAE on face images (defaults: the paper's recipe)."""

    stage = "pretrain"

    data: list[str] = field(
        metadata={
            "help": "Image folders (searched recursively, e.g. an Aff-Wild2 root or its cropped_aligned/) and/or "
            "text files listing one image path per line (relative to the file)."
        }
    )
    model: str | None = field(
        default=None,
        metadata={
            "help": "Checkpoint to continue from (folder or Hub id), or a folder with only config.json to train "
            "from scratch at that size; default: the paper's ViT-Base/16, 224x224, 75%% masking."
        },
    )
    validation_fraction: float = field(default=0.01, metadata={"help": "Share of the images held out for validation."})
    base_learning_rate: float = field(default=1.5e-4, metadata={"help": "MAE's lr per 256 samples of batch."})
    learning_rate: float | None = field(
        default=None, metadata={"help": "Absolute peak learning rate; default base_learning_rate x batch_size / 256."}
    )
    min_crop_scale: float = field(default=0.2, metadata={"help": "Smallest area fraction of the random crops."})
    batch_size: int = stage_default("batch_size", 4096)
    num_epochs: int = stage_default("num_epochs", 800)
    warmup_ratio: float = stage_default("warmup_ratio", 0.05)  # MAE: 40 warm-up epochs of 800
    adam_beta2: float = stage_default("adam_beta2", 0.95)
    max_grad_norm: float = stage_default("max_grad_norm", 0.0)  # MAE pre-training does not clip
    metric_for_best_model: str = stage_default("metric_for_best_model", "loss")

    def __post_init__(self):
        if isinstance(self.data, str):  # one path given in a YAML file
            self.data = [self.data]
        if self.learning_rate is None:
            self.learning_rate = self.base_learning_rate * self.batch_size / 256
        if not 0 < self.validation_fraction < 1:
            raise InputError(f"--validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if not 0 < self.min_crop_scale <= 1:
            raise InputError(f"--min_crop_scale must be in (0, 1], got {self.min_crop_scale}")
        super().__post_init__()


def list_images(sources: list[str]) -> list[str]:
    """Image paths from folders (recursively, sorted) and list files (one path per line, relative to the file)."""
    images = []
    for source in map(Path, sources):
        if source.is_dir():
            found = []
            for folder, _, files in os.walk(source):
                found += [os.path.join(folder, name) for name in files if name.lower().endswith(IMAGE_EXTENSIONS)]
            images += sorted(found)
        elif source.is_file():
            lines = [line.strip() for line in source.read_text().splitlines()]
            images += [str(source.parent / line) for line in lines if line]
        else:
            raise InputError(f"{source}: no such image folder or list file")
    if not images:
        raise InputError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {', '.join(sources)}")
    return images


class ImageDataset(Dataset):
    """Images as `pixel_values`, through `transform` (PIL RGB image -> tensor)."""

    def __init__(self, paths: list[str], transform: FaceTransform):
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        try:
            with Image.open(self.paths[index]) as image:
                return {"pixel_values": self.transform(image.convert("RGB"))}
        except OSError as error:
            raise InputError(f"{self.paths[index]}: cannot read the image ({error})") from None


def reconstruction_losses(model: FaceMAEForPreTraining, pixel_values: torch.Tensor, outputs) -> torch.Tensor:
    """ViTMAEForPreTraining's loss (pixel MSE over the masked patches), per image instead of per batch."""
    target = model.patchify(pixel_values)
    if model.config.norm_pix_loss:
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1.0e-6) ** 0.5
    errors = ((outputs.logits.float() - target) ** 2).mean(-1)
    return (errors * outputs.mask).sum(-1) / outputs.mask.sum(-1)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_arguments(PretrainArguments, argv, prog)
    accelerator = make_accelerator(args)

    images = list_images(args.data)
    held_out = max(1, round(args.validation_fraction * len(images)))
    if held_out >= len(images):
        raise InputError(f"{len(images)} images are too few to hold out {held_out} for validation")
    order = np.random.default_rng(args.seed).permutation(len(images))
    model, origin = load_model(FaceMAEForPreTraining, args.model, args.verbose)
    processor = face_image_processor(model.config)
    train_set = ImageDataset(
        [images[i] for i in sorted(order[held_out:])], FaceTransform(processor, args.min_crop_scale, flip=True)
    )
    eval_set = ImageDataset([images[i] for i in sorted(order[:held_out])], FaceTransform(processor))
    num_patches = (model.config.image_size // model.config.patch_size) ** 2

    def compute_loss(model, batch):
        return model(pixel_values=batch["pixel_values"]).loss

    def evaluate(model, dataloader):
        def forward(batch):
            # The same mask for an image at every evaluation (and on any number of processes): seeded by its index.
            noise = torch.stack(
                [torch.rand(num_patches, generator=torch.Generator().manual_seed(int(i))) for i in batch["index"]]
            )
            outputs = model(pixel_values=batch["pixel_values"], noise=noise.to(batch["pixel_values"].device))
            return {"loss": reconstruction_losses(accelerator.unwrap_model(model), batch["pixel_values"], outputs)}

        losses = gather_predictions(accelerator, model, dataloader, forward)["loss"]
        return {"loss": float(losses.mean()), "num_samples": len(losses)}

    train(accelerator, args, model, origin, train_set, eval_set, compute_loss, evaluate)
    return 0


if __name__ == "__main__":
    run_main(main)
