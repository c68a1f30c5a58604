"""A video's frames predicted as they are decoded, in memory that does not grow with its length.

* `stride_keyframes`: the face frames the encoder sees with a frame stride; `FrameSources`: how every other frame
  takes its visual features from them (linear interpolation in time between encoded frames of the same stretch of
  face frames, and for a frame without a face the nearest face frame's, as `smoothing.fill_missing_frames` fills).
* `StreamedAudio`: each audio modality's features aligned to the frames, computed a stretch of frames at a time
  from audio decoded in chunks (`media.stream_audio`, `AudioFeatureExtractor.stream`).
* `ClipFusion`: a TMF model over clips of `clip_length` frames, run as soon as the visual features a clip needs have
  been encoded; only the features of pending clips are kept.

So the TMF path holds a few clips of features, not the video's: its memory is flat in the video's length, apart from
per-frame scalars (times, boxes, the predictions themselves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch

from ..audio import AudioFeatureExtractor, AudioFeatures, align_to_frames
from ..configuration_tmf import VISUAL_MODALITY
from ..evaluation import affect_predictions, tmf_inputs
from ..media import stream_audio
from ..smoothing import fill_missing_frames


def stride_keyframes(face_frames: Sequence[int], stride: int) -> np.ndarray:
    """The frames to encode, sorted: every `stride`-th frame of each run of consecutive face frames, counted from
    the run's first, and each run's last frame, so every face frame between two encoded ones lies in the same run
    (no interpolation across a stretch without the face)."""
    frames = np.unique(np.asarray(face_frames, dtype=np.int64))
    if stride == 1 or len(frames) == 0:
        return frames
    run_first = np.r_[True, np.diff(frames) > 1]
    run_start = np.maximum.accumulate(np.where(run_first, np.arange(len(frames)), 0))
    run_last = np.r_[run_first[1:], True]
    return frames[((np.arange(len(frames)) - run_start) % stride == 0) | run_last]


class FrameSources(NamedTuple):
    """Where each frame's values come from: (1 - weight) x those of keyframe `lower` + weight x those of keyframe
    `upper` (frame indices, (T,) each; an encoded frame is its own source, with weight 0). `lower` and `upper` never
    decrease along the video, so a stretch of frames needs only the keyframes from its first frame's `lower` to its
    last frame's `upper`."""

    lower: np.ndarray
    upper: np.ndarray
    weight: np.ndarray

    @classmethod
    def build(cls, has_face: np.ndarray, keyframes: np.ndarray, times: np.ndarray) -> FrameSources:
        """Sources of T frames (`has_face` (T,) bool, `times` (T,) seconds) from the sorted encoded `keyframes`."""
        # A frame without a face copies the nearest face frame (`fill_missing_frames`' rule), a face frame itself.
        frame = fill_missing_frames(np.arange(len(has_face)), has_face)
        # ... and a face frame lies between the keyframes around it (at most one each side: the runs' ends are).
        upper_index = np.minimum(np.searchsorted(keyframes, frame), len(keyframes) - 1)
        exact = keyframes[upper_index] == frame
        lower = np.where(exact, frame, keyframes[np.maximum(upper_index - 1, 0)])
        upper = np.where(exact, frame, keyframes[upper_index])
        span = times[upper] - times[lower]
        weight = np.divide(times[frame] - times[lower], span, out=np.zeros(len(frame)), where=span > 0)
        return cls(lower, upper, np.clip(weight, 0.0, 1.0).astype(np.float32))

    def blend(self, values: Mapping[int, np.ndarray] | np.ndarray, frames: np.ndarray) -> np.ndarray:
        """The values (len(frames), C) of `frames`, from the keyframes' (an array indexed by frame, or a mapping)."""
        lower, upper = self.lower[frames], self.upper[frames]
        if isinstance(values, Mapping):
            lower_values = np.stack([values[frame] for frame in lower.tolist()])
            upper_values = np.stack([values[frame] for frame in upper.tolist()])
        else:
            lower_values, upper_values = values[lower], values[upper]
        weight = self.weight[frames, None]
        return ((1 - weight) * lower_values + weight * upper_values).astype(np.float32)


class _AlignedStream:
    """One audio modality's features, read from its stream as far as the frames asked for need them and dropped
    once the frames have passed them; frame times must not decrease between calls."""

    def __init__(self, extractor: AudioFeatureExtractor, pieces):
        self.pieces, self.feature_size, self.present = pieces, extractor.feature_size, False
        self.values = np.zeros((0, extractor.feature_size), np.float32)
        self.times = np.zeros(0, np.float64)
        self.exhausted = False

    def __call__(self, frame_times: np.ndarray):
        while not self.exhausted and (len(self.times) == 0 or self.times[-1] < frame_times.max()):
            piece = next(self.pieces, None)
            if piece is None:
                self.exhausted = True
            else:
                self.present = True
                self.values = np.concatenate([self.values, piece.values])
                self.times = np.concatenate([self.times, piece.timestamps])
        aligned = align_to_frames(AudioFeatures(self.values, self.times), frame_times)
        # Later frames come at or after these: keep from the last feature at or before the earliest of them.
        keep = max(0, np.searchsorted(self.times, frame_times.min(), side="right") - 1)
        self.values, self.times = self.values[keep:], self.times[keep:]
        return aligned


class StreamedAudio:
    """Each audio modality's features aligned to a video's frames (`audio.align_to_frames`'s rule), computed as
    stretches of frames are asked for, from the audio of `source` decoded in chunks; None: no audio (zeros, mask 0).

    Several consumers (one `ClipFusion` per face) may read it; each says which frames it no longer needs
    (`release`), and the aligned rows are kept from the earliest frame any of them may still ask for.
    """

    def __init__(self, extractors: Mapping[str, AudioFeatureExtractor], source, times: np.ndarray, consumers: int = 1):
        self.times = times
        self.streams = {
            name: _AlignedStream(
                extractor, iter(extractor.stream(lambda: stream_audio(source))) if source is not None else iter(())
            )
            for name, extractor in extractors.items()
        }
        self.first, self.computed = 0, 0  # the rows kept are those of frames [first, computed)
        self.rows: dict[str, np.ndarray] = {}
        for name, stream in self.streams.items():
            self.rows[name] = np.zeros((0, stream.feature_size), np.float32)
            self.rows[f"{name}_mask"] = np.zeros(0, np.int64)
        self.released = [0] * consumers

    @property
    def present(self) -> bool:
        """Whether audio was found (known once some frames were asked for)."""
        return any(stream.present for stream in self.streams.values())

    def frames(self, first: int, stop: int) -> dict[str, np.ndarray]:
        """Rows of frames [first, stop): `<name>` (n, D) values and `<name>_mask` (n,) per modality."""
        if stop > self.computed:
            times = self.times[self.computed : stop]
            for name, stream in self.streams.items():
                aligned = stream(times)
                self.rows[name] = np.concatenate([self.rows[name], aligned.values])
                self.rows[f"{name}_mask"] = np.concatenate([self.rows[f"{name}_mask"], aligned.mask])
            self.computed = stop
        return {name: rows[first - self.first : stop - self.first] for name, rows in self.rows.items()}

    def release(self, consumer: int, frame: int) -> None:
        """`consumer` will not ask for frames before `frame` again."""
        self.released[consumer] = frame
        drop = min(min(self.released), self.computed) - self.first
        if drop > 0:
            self.rows = {name: rows[drop:] for name, rows in self.rows.items()}
            self.first += drop


class ClipFusion:
    """A TMF model's predictions for one face of a video, over clips of `clip_length` frames starting every
    `clip_stride` frames (default: tiles), until a clip reaches the video's end (the last padded), as `ClipDataset`
    cuts them for training. Visual features arrive keyframe by keyframe in frame order (`add`); a clip runs once the
    keyframes its frames come from (`FrameSources`) are in, `batch_size` clips at a time, and keyframes no pending
    clip needs are dropped. A frame covered by several clips takes the mean of their predictions (`finish`).
    """

    def __init__(
        self,
        model,
        tasks: Sequence[str],
        sources: FrameSources,
        audio: StreamedAudio,
        *,
        consumer: int = 0,
        clip_stride: int | None = None,
        batch_size: int = 32,
    ):
        self.model, self.tasks, self.sources, self.audio = model, list(tasks), sources, audio
        self.consumer, self.batch_size = consumer, batch_size
        self.clip_length, self.num_frames = model.config.clip_length, len(sources.lower)
        stride = clip_stride or self.clip_length
        self.starts = stride * np.arange(1 + -(-max(self.num_frames - self.clip_length, 0) // stride))
        last_frames = np.minimum(self.starts + self.clip_length, self.num_frames) - 1
        self.waits_for = sources.upper[last_frames]  # the last keyframe each clip needs (never decreasing)
        self.features: dict[int, np.ndarray] = {}
        self.next_clip = 0
        self.sums: dict[str, np.ndarray] = {}

    def add(self, frames: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        """The visual backbone's outputs for keyframes `frames` (increasing, after every keyframe added before):
        their pooled `features` (n, D)."""
        self.features.update(zip(frames.tolist(), values["features"]))
        ready = int(np.searchsorted(self.waits_for, frames[-1], side="right"))
        while ready - self.next_clip >= self.batch_size:
            self._run(self.next_clip + self.batch_size)

    def finish(self) -> dict[str, np.ndarray]:
        """Task -> (T, C) predictions, once every keyframe was added."""
        while self.next_clip < len(self.starts):
            self._run(min(self.next_clip + self.batch_size, len(self.starts)))
        positions = np.minimum(self.starts[:, None] + np.arange(self.clip_length), self.num_frames)
        counts = np.bincount(positions.reshape(-1), minlength=self.num_frames + 1)[: self.num_frames, None]
        return {name: (total[: self.num_frames] / counts).astype(np.float32) for name, total in self.sums.items()}

    @torch.inference_mode()
    def _run(self, stop_clip: int) -> None:
        """Clips [next_clip, stop_clip) as one batch."""
        starts = self.starts[self.next_clip : stop_clip]
        # Frame of every clip position; positions past the video's end point at a padding row (zeros, mask 0).
        positions = np.minimum(starts[:, None] + np.arange(self.clip_length), self.num_frames)
        first, stop = int(starts[0]), int(min(starts[-1] + self.clip_length, self.num_frames))
        columns = dict(self.audio.frames(first, stop))
        columns[VISUAL_MODALITY] = self.sources.blend(self.features, np.arange(first, stop))
        columns["attention_mask"] = np.ones(stop - first, np.int64)
        rows = np.where(positions < self.num_frames, positions - first, stop - first)
        batch = {}
        for name, values in columns.items():
            padded = np.concatenate([values, np.zeros((1, *values.shape[1:]), values.dtype)])
            batch[name] = torch.from_numpy(padded[rows]).to(self.model.device)
        outputs = self.model(**tmf_inputs(batch, self.model.config), attention_mask=batch["attention_mask"])
        for name, values in affect_predictions(outputs, self.tasks).items():
            values = values.float().cpu().numpy()
            total = self.sums.setdefault(name, np.zeros((self.num_frames + 1, values.shape[-1])))
            np.add.at(total, positions, values)
        self.next_clip = stop_clip
        if stop_clip < len(self.starts):
            next_start = int(self.starts[stop_clip])
            needed = self.sources.lower[next_start]
            for frame in [frame for frame in self.features if frame < needed]:
                del self.features[frame]
        else:
            next_start = self.num_frames
        self.audio.release(self.consumer, next_start)


class FrameOutputs:
    """A frame model's per-frame outputs for one face of a video, (T, C) per name: the keyframes' as encoded, the
    face frames between them blended from theirs (`FrameSources`), NaN without a face (post-processing fills those
    from the nearest face frame's predictions)."""

    def __init__(self, sources: FrameSources, has_face: np.ndarray):
        self.sources, self.has_face = sources, has_face
        self.values: dict[str, np.ndarray] = {}
        self.encoded: list[np.ndarray] = []

    def add(self, frames: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        for name, rows in values.items():
            if name not in self.values:
                self.values[name] = np.full((len(self.has_face), rows.shape[1]), np.nan, np.float32)
            self.values[name][frames] = rows
        self.encoded.append(frames)

    def finish(self) -> dict[str, np.ndarray]:
        encoded = np.concatenate(self.encoded) if self.encoded else np.zeros(0, np.int64)
        between = np.setdiff1d(np.flatnonzero(self.has_face), encoded)
        for values in self.values.values():
            values[between] = self.sources.blend(values, between)
        return self.values
