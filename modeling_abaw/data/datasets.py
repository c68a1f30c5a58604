"""torch Datasets over an Aff-Wild2 frame table (`AffWild2.frame_table`).

- `FrameDataset`: one face crop per item, for the frame-wise fine-tuning of the MAE encoder (paper Sec. 3.1).
- `ClipDataset`: clips of K consecutive frames (K=100 in the paper) with per-frame features, for the temporal,
  multi-modal fusion model (paper Sec. 3.2).
- `IndexedDataset`: any of them with each item's `index` (how evaluation maps gathered predictions back to table
  rows) and a per-item seeded RNG for training augmentation.

Both return the batch keys of docs/CONVENTIONS.md, with the official "no label" markers left in for the loss to mask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import InputError
from ..tasks import TASK_NAMES, TASKS, validate_tasks

if TYPE_CHECKING:  # frame tables are built by affwild2.py (the train extra); here they are only read
    import datasets

FeatureLoader = Callable[[str, int, int], Mapping[str, torch.Tensor]]


def _table_tasks(frames: datasets.Dataset, tasks: str | Sequence[str] | None) -> list[str]:
    """The requested tasks (default: every task with a label column in the table), checked against the table."""
    if tasks is None:
        tasks = [task for task in TASK_NAMES if TASKS[task].label_key in frames.column_names]
    tasks = validate_tasks(tasks)
    missing = [TASKS[task].label_key for task in tasks if TASKS[task].label_key not in frames.column_names]
    if missing:
        raise InputError(f"the frame table has no {', '.join(missing)} column; build it with these tasks")
    return tasks


class FrameDataset(Dataset):
    """Frames that have a face crop, as `pixel_values` plus the labels of `tasks`, `video` (str) and `frame` (int).

    Args:
        frames: a frame table (`AffWild2.frame_table`); frames without a face crop are skipped.
        transform: maps an RGB PIL image to a (3, H, W) tensor (e.g. a torchvision transform), or is an image
            processor such as transformers' `ViTImageProcessor`, whose output's `pixel_values[0]` is taken.
        tasks: label keys to return (`au_labels` (12,) float, `expr_labels` () long, `va_labels` (2,) float);
            default: every task of the table.
        labelled_only: also skip frames without any label of `tasks`, which teach nothing when training (e.g. the
            frames of EXPR-only videos when training AU). Off by default, because extracting features for the
            temporal model needs every frame with a face.
    """

    def __init__(
        self,
        frames: datasets.Dataset,
        transform: Callable,
        tasks: str | Sequence[str] | None = None,
        labelled_only: bool = False,
    ):
        self.tasks = _table_tasks(frames, tasks)
        self.transform = transform
        label_keys = [TASKS[task].label_key for task in self.tasks]
        self.frames = frames.select_columns(["video", "frame", "image_path", *label_keys])
        columns = frames.with_format("numpy")
        keep = columns["has_face"][:]
        if labelled_only:
            labelled = [TASKS[task].is_labelled(columns[TASKS[task].label_key][:]) for task in self.tasks]
            keep &= np.any([valid.reshape(len(keep), -1).any(axis=1) for valid in labelled], axis=0)
        self.indices = np.flatnonzero(keep)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        row = self.frames[int(self.indices[index])]
        with Image.open(row["image_path"]) as image:
            pixel_values = self.transform(image.convert("RGB"))
        if isinstance(pixel_values, Mapping):  # an image processor's BatchFeature holds a batch of one
            pixel_values = pixel_values["pixel_values"][0]
        item = {"pixel_values": torch.as_tensor(np.asarray(pixel_values), dtype=torch.float32)}
        for task in self.tasks:
            spec = TASKS[task]
            item[spec.label_key] = torch.from_numpy(np.asarray(row[spec.label_key], dtype=spec.label_dtype))
        item.update(video=row["video"], frame=row["frame"])
        return item


class ClipDataset(Dataset):
    """Clips of `clip_length` consecutive frames tiling each video, for temporal models.

    Clips start every `stride` frames (default: `clip_length`, i.e. no overlap) until one reaches the video's end; a
    clip running past the end is padded. Each item holds `video` (str), `frame` (K,) 1-based numbers (0 on padding),
    `attention_mask` (K,) 1 = real frame / 0 = padding, `has_face` (K,) 1 where the frame has a face crop, the labels
    of `tasks` with a time axis (padding carries the "no label" markers) and the tensors of `load_features`, zero-padded
    to (K, D).

    Args:
        frames: a frame table (`AffWild2.frame_table`), whole videos in frame order (selecting videos is fine,
            shuffling rows is not: clips are read as row ranges).
        load_features: `load_features(video, start, stop)` returns `{name: (stop - start, D) tensor}` for the frames
            start+1 .. stop (0-based offsets, like slicing per-video arrays indexed by frame - 1); None: labels only.
        tasks: label keys to return; default: every task of the table.
        clip_length: frames per clip, K (the paper uses 100).
        stride: frames between the starts of consecutive clips.
    """

    def __init__(
        self,
        frames: datasets.Dataset,
        load_features: FeatureLoader | None = None,
        tasks: str | Sequence[str] | None = None,
        clip_length: int = 100,
        stride: int | None = None,
    ):
        stride = clip_length if stride is None else stride
        if clip_length < 1 or stride < 1:
            raise InputError(f"clip_length and stride must be positive, got {clip_length} and {stride}")
        self.tasks = _table_tasks(frames, tasks)
        self.load_features = load_features
        self.clip_length = clip_length
        label_keys = [TASKS[task].label_key for task in self.tasks]
        self.frames = frames.select_columns(["video", "frame", "has_face", *label_keys]).with_format("numpy")
        self.clips = self._tile(self.frames["video"][:], self.frames["frame"][:], clip_length, stride)

    @staticmethod
    def _tile(videos: np.ndarray, frames: np.ndarray, clip_length: int, stride: int) -> list[tuple[str, int, int]]:
        """(video, first row, number of real frames) of every clip, checking that each video is one run of rows."""
        if not len(videos):
            return []
        starts = np.flatnonzero(np.r_[True, videos[1:] != videos[:-1]])
        stops = np.r_[starts[1:], len(videos)]
        run_videos = videos[starts].tolist()
        consecutive = np.diff(frames) == 1
        consecutive[starts[1:] - 1] = True  # a new video may start at any frame number
        if len(set(run_videos)) != len(run_videos) or not consecutive.all():
            raise InputError(
                "ClipDataset needs whole videos in frame order: select videos, but never shuffle or drop rows"
            )
        clips = []
        for video, start, stop in zip(run_videos, starts.tolist(), stops.tolist()):
            length = stop - start
            count = 1 + -(-max(length - clip_length, 0) // stride)  # the last clip is the first to reach the end
            clips += [(video, start + i * stride, min(clip_length, length - i * stride)) for i in range(count)]
        return clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        video, row, length = self.clips[index]
        rows = self.frames[row : row + length]
        item = {
            "video": video,
            "frame": self._pad(torch.from_numpy(rows["frame"].astype(np.int64)), 0),
            "attention_mask": self._pad(torch.ones(length, dtype=torch.long), 0),
            "has_face": self._pad(torch.from_numpy(rows["has_face"].astype(np.int64)), 0),
        }
        for task in self.tasks:
            spec = TASKS[task]
            labels = torch.from_numpy(rows[spec.label_key].astype(spec.label_dtype))
            item[spec.label_key] = self._pad(labels, spec.invalid_value)
        if self.load_features is not None:
            start = int(rows["frame"][0]) - 1
            for name, features in self.load_features(video, start, start + length).items():
                features = torch.as_tensor(features)
                if name in item or features.shape[0] != length:
                    raise InputError(
                        f"load_features({video!r}, {start}, {start + length}) returned {name!r} of shape "
                        f"{tuple(features.shape)}; expected {length} rows and a name that is not a batch key"
                    )
                item[name] = self._pad(features, 0)
        return item

    def _pad(self, values: torch.Tensor, value: float) -> torch.Tensor:
        """Pad the time axis (dim 0) to the clip length with `value`."""
        padding = values.new_full((self.clip_length - len(values), *values.shape[1:]), value)
        return torch.cat([values, padding])


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
