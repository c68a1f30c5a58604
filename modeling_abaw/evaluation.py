"""Evaluation shared by training, the demo and inference: predictions from model outputs, the ABAW scores of a frame
table's videos (raw and after the model's smoothing policy), and the evaluation of TMF over clips.

Nothing here trains or imports the training stages; the functions that run over a distributed loader take the
caller's `accelerate.Accelerator` (any object with `gather_for_metrics`), so this module needs no Accelerate import.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .metrics import compute_abaw_metrics
from .smoothing import postprocess_by_video
from .tasks import TASKS

if TYPE_CHECKING:
    import datasets
    from torch.utils.data import DataLoader

    from .data import ClipDataset


def affect_predictions(outputs, tasks: Sequence[str]) -> dict[str, torch.Tensor]:
    """Per-task predictions of an `AffectOutput`, as metrics, smoothing and tables take them: AU and expression
    probabilities, VA values (`AffectTask.predictions` of each task's output)."""
    return {name: TASKS[name].predictions(outputs[TASKS[name].output_key]) for name in tasks}


@torch.no_grad()
def gather_predictions(
    accelerator, model: torch.nn.Module, dataloader: DataLoader, forward: Callable[[dict], dict[str, torch.Tensor]]
) -> dict[str, np.ndarray]:
    """Run `forward(batch) -> {name: (batch, ...) tensor}` over an evaluation loader and gather the results of every
    process with `accelerator.gather_for_metrics`, which drops the samples repeated to even out the last batches:
    each sample counts once."""
    model.eval()
    gathered = defaultdict(list)
    for batch in dataloader:
        for name, value in accelerator.gather_for_metrics(forward(batch)).items():
            gathered[name].append(value.cpu().float() if value.is_floating_point() else value.cpu())
    return {name: torch.cat(values).numpy() for name, values in gathered.items()}


def abaw_scores(
    frames: datasets.Dataset, rows: np.ndarray, predictions: Mapping[str, np.ndarray], smoothing_policy: Mapping
) -> dict[str, float]:
    """ABAW metrics of per-frame predictions for rows `rows` of a frame table, over every frame of its videos.

    Frames without a face take the prediction of the nearest frame with one (unpredicted rows count as faceless).
    Keys: `num_samples` (predictions evaluated), the raw metrics (`score`, `au_f1`, ...) and, after the smoothing
    policy of the model config, the post-processed ones (`smoothed/score`, `smoothed/au_f1`, ...).
    """
    if len(np.unique(rows)) != len(rows):
        raise RuntimeError("Some validation frames were predicted more than once.")
    columns = frames.with_format("numpy")
    videos = columns["video"][:]
    has_face = np.zeros(len(frames), dtype=bool)
    has_face[rows] = columns["has_face"][:][rows]
    full = {}
    for task, values in predictions.items():
        full[task] = np.zeros((len(frames), values.shape[-1]), dtype=np.float32)
        full[task][rows] = values
    labels = {task: columns[TASKS[task].label_key][:] for task in predictions}
    raw = postprocess_by_video(full, videos, has_face, {task: {"filter": "none"} for task in predictions})
    smoothed = postprocess_by_video(full, videos, has_face, smoothing_policy)
    return {
        "num_samples": len(rows),
        **compute_abaw_metrics(raw, labels),
        **{f"smoothed/{name}": value for name, value in compute_abaw_metrics(smoothed, labels).items()},
    }


def tmf_inputs(batch: Mapping, config) -> dict:
    """The `TMFForAffect` keyword arguments (`features`, `modality_mask`) of a collated `ClipDataset` batch."""
    return {
        "features": {name: batch[name] for name in config.used_modalities},
        "modality_mask": {name: batch[f"{name}_mask"] for name in config.audio_modalities},
    }


def evaluate_clips(
    accelerator, model, dataloader: DataLoader, clips: ClipDataset, frames: datasets.Dataset
) -> dict[str, float]:
    """ABAW scores (raw and smoothed) of a TMF model over every frame of the videos of `clips`, a ClipDataset of the
    frame table `frames`; `dataloader` yields its clips with their `index` in `clips`. Clips may overlap (a
    ClipDataset `stride` below its clip length): each frame then takes the mean of its clips' predictions. `model`
    may be wrapped for distributed training: its config is read from the unwrapped model."""
    config = accelerator.unwrap_model(model).config
    first_rows = np.array([first_row for _, first_row, _ in clips.clips])

    def forward(batch):
        outputs = model(**tmf_inputs(batch, config), attention_mask=batch["attention_mask"])
        return {"index": batch["index"], "mask": batch["attention_mask"], **affect_predictions(outputs, config.tasks)}

    predictions = gather_predictions(accelerator, model, dataloader, forward)
    index, real = predictions.pop("index"), predictions.pop("mask").astype(bool)
    # Clip i covers table rows first_rows[i] + 0..K-1; padding frames are dropped.
    rows = (first_rows[index][:, None] + np.arange(real.shape[1]))[real]
    # Overlapping clips (a stride below K) predict a frame once per clip covering it: their predictions are
    # averaged. Without overlap every frame is predicted once and its prediction is kept as it is.
    frame_rows, clip_of_prediction, counts = np.unique(rows, return_inverse=True, return_counts=True)
    averaged = {}
    for task, values in predictions.items():
        sums = np.zeros((len(frame_rows), values.shape[-1]), dtype=np.float64)
        np.add.at(sums, clip_of_prediction, values[real])
        averaged[task] = (sums / counts[:, None]).astype(values.dtype)
    return abaw_scores(frames, frame_rows, averaged, config.smoothing_policy)
