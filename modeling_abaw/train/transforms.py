"""What the image stages do to a training sample: MAE's random resized crop and flip of a face image. The per-item
seeding that makes augmentation independent of workers, processes and resumption is `data.IndexedDataset`, which
evaluation shares (it gives each item its `index`)."""

import math

import torch
from PIL import Image


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
    optional random resized crop (area fraction in [min_crop_scale, 1]; none at 1) and horizontal flip for training."""

    def __init__(self, processor, min_crop_scale: float | None = None, flip: bool = False):
        self.processor, self.min_crop_scale, self.flip = processor, min_crop_scale, flip

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if self.min_crop_scale is not None and self.min_crop_scale < 1:
            image = image.crop(random_resized_box(*image.size, scale=(self.min_crop_scale, 1.0)))
        if self.flip and torch.rand(()) < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return self.processor(image, return_tensors="pt")["pixel_values"][0]
