"""Evaluation shared by training, the demo, inference and the smoothing search: predictions from model outputs, the
predictions of a FaceMAE model over face crops and of TMF over clips, the full per-frame predictions of a frame
table, and their ABAW scores (raw and after the model's smoothing policy).

Nothing here trains or imports the training stages; the functions that run over a distributed loader take the
caller's `accelerate.Accelerator` (for `gather_for_metrics`, `unwrap_model`, and `prepare` in
`predict_frame_table`), so this module needs no Accelerate import.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader

from .metrics import compute_abaw_metrics
from .modeling_face_mae import face_image_processor
from .modeling_tmf import TMFForAffect
from .smoothing import postprocess_by_video
from .tasks import TASKS

if TYPE_CHECKING:
    import datasets

    from .data.datasets import ClipDataset, FeatureLoader, FrameDataset


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


@dataclass
class TablePredictions:
    """Predictions of every frame of a frame table, in table order, as smoothing and the metrics take them.

    Attributes:
        videos: (N,) the video of each frame.
        has_face: (N,) bool, True where the frame has a face and was predicted; the others are filled from the
            nearest such frame of their video by the post-processing.
        predictions: task -> (N, C) float32: AU and EXPR probabilities, VA values; zeros where `has_face` is False.
        labels: task -> the frames' labels, with the "no label" markers.
        num_predicted: the frames that were predicted.
    """

    videos: np.ndarray
    has_face: np.ndarray
    predictions: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    num_predicted: int


def table_predictions(
    frames: datasets.Dataset, rows: np.ndarray, predictions: Mapping[str, np.ndarray]
) -> TablePredictions:
    """Per-frame predictions `predictions` of rows `rows` of a frame table, spread over every frame of its videos
    (unpredicted rows count as faceless)."""
    if len(np.unique(rows)) != len(rows):
        raise RuntimeError("Some validation frames were predicted more than once.")
    columns = frames.with_format("numpy")
    has_face = np.zeros(len(frames), dtype=bool)
    has_face[rows] = columns["has_face"][:][rows]
    full = {}
    for task, values in predictions.items():
        full[task] = np.zeros((len(frames), values.shape[-1]), dtype=np.float32)
        full[task][rows] = values
    labels = {task: columns[TASKS[task].label_key][:] for task in predictions}
    return TablePredictions(columns["video"][:], has_face, full, labels, len(rows))


def score_predictions(table: TablePredictions, smoothing_policy: Mapping) -> dict[str, float]:
    """ABAW metrics of a table's predictions over all its frames, frames without a face taking the prediction of the
    nearest frame with one. Keys: `num_samples` (predictions evaluated), the raw metrics (`score`, `au_f1`, ...) and,
    after `smoothing_policy`, the post-processed ones (`smoothed/score`, `smoothed/au_f1`, ...)."""
    no_smoothing = {task: {"filter": "none"} for task in table.predictions}
    raw = postprocess_by_video(table.predictions, table.videos, table.has_face, no_smoothing)
    smoothed = postprocess_by_video(table.predictions, table.videos, table.has_face, smoothing_policy)
    return {
        "num_samples": table.num_predicted,
        **compute_abaw_metrics(raw, table.labels),
        **{f"smoothed/{name}": value for name, value in compute_abaw_metrics(smoothed, table.labels).items()},
    }


def abaw_scores(
    frames: datasets.Dataset, rows: np.ndarray, predictions: Mapping[str, np.ndarray], smoothing_policy: Mapping
) -> dict[str, float]:
    """`score_predictions` of per-frame predictions for rows `rows` of a frame table, over every frame of its
    videos: raw and after the smoothing policy of the model config."""
    return score_predictions(table_predictions(frames, rows, predictions), smoothing_policy)


def tmf_inputs(batch: Mapping, config) -> dict:
    """The `TMFForAffect` keyword arguments (`features`, `modality_mask`) of a collated `ClipDataset` batch."""
    return {
        "features": {name: batch[name] for name in config.used_modalities},
        "modality_mask": {name: batch[f"{name}_mask"] for name in config.audio_modalities},
    }


def predict_face_crops(
    accelerator, model, dataloader: DataLoader, dataset: FrameDataset
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(frame-table rows, per-task predictions) of a FaceMAEForAffect over the face crops of `dataset`;
    `dataloader` yields its items with their `index` in `dataset` (`IndexedDataset`)."""
    tasks = accelerator.unwrap_model(model).config.tasks

    def forward(batch):
        return {"index": batch["index"], **affect_predictions(model(pixel_values=batch["pixel_values"]), tasks)}

    predictions = gather_predictions(accelerator, model, dataloader, forward)
    return dataset.indices[predictions.pop("index")], predictions


def predict_clips(
    accelerator, model, dataloader: DataLoader, clips: ClipDataset
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(frame-table rows, per-task predictions) of a TMF model over the clips of `clips`; `dataloader` yields its
    clips with their `index` in `clips`. Clips may overlap (a ClipDataset `stride` below its clip length): each
    frame then takes the mean of its clips' predictions. `model` may be wrapped for distributed training: its
    config is read from the unwrapped model."""
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
    return frame_rows, averaged


def evaluate_face_crops(
    accelerator, model, dataloader: DataLoader, dataset: FrameDataset, frames: datasets.Dataset
) -> dict[str, float]:
    """ABAW scores (raw and smoothed) of a FaceMAEForAffect over every frame of the videos of `dataset`, a
    FrameDataset of the frame table `frames` (see `predict_face_crops`)."""
    rows, predictions = predict_face_crops(accelerator, model, dataloader, dataset)
    return abaw_scores(frames, rows, predictions, accelerator.unwrap_model(model).config.smoothing_policy)


def evaluate_clips(
    accelerator, model, dataloader: DataLoader, clips: ClipDataset, frames: datasets.Dataset
) -> dict[str, float]:
    """ABAW scores (raw and smoothed) of a TMF model over every frame of the videos of `clips`, a ClipDataset of the
    frame table `frames` (see `predict_clips`)."""
    rows, predictions = predict_clips(accelerator, model, dataloader, clips)
    return abaw_scores(frames, rows, predictions, accelerator.unwrap_model(model).config.smoothing_policy)


def predict_frame_table(
    accelerator,
    model,
    frames: datasets.Dataset,
    load_features: FeatureLoader | None = None,
    batch_size: int = 32,
    clip_stride: int | None = None,
) -> TablePredictions:
    """The raw per-frame predictions of a trained model for every frame of a frame table (e.g. the validation
    videos), by the code path the training stages validate with.

    A FaceMAEForAffect predicts the face crops (`FrameDataset` with the model's image processor); a TMFForAffect
    the clips of `load_features` (a `FeatureCache.load_features`), `clip_stride` frames apart (default: tiled).
    `accelerator` (an `accelerate.Accelerator`) places the model and batches and gathers the predictions.
    """
    # Imported here: data.datasets needs the `datasets` package, which inference (a user of this module) does without.
    from .data.datasets import ClipDataset, FrameDataset, IndexedDataset

    config = model.config
    if isinstance(model, TMFForAffect):
        if load_features is None:
            raise ValueError("A TMF model predicts from cached features: pass load_features.")
        dataset = ClipDataset(frames, load_features, config.tasks, config.clip_length, clip_stride)
        predict = predict_clips
    else:
        dataset = FrameDataset(frames, face_image_processor(config), config.tasks)
        predict = predict_face_crops
    model, dataloader = accelerator.prepare(model, DataLoader(IndexedDataset(dataset, seed=0), batch_size=batch_size))
    return table_predictions(frames, *predict(accelerator, model, dataloader, dataset))
