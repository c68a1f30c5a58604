"""`AffectPipeline`: per-frame action units, expression and valence/arousal of the faces in videos and images.

For each input:

1. faces: the frames are decoded (shrunk to `detection_size`) and faces are detected and tracked
   (`faces.FaceTracker`); the main face is the most prominent one (`all_faces=True` keeps every face).
2. affect: the frames are decoded again, full size, and each frame's face crop goes through the FaceMAE encoder in
   batches. A FaceMAEForAffect checkpoint predicts from these crops directly. For a TMFForAffect checkpoint the
   pooled visual features (frames without a face take the nearest face frame's, as in `abaw extract-features`) are
   fused with the checkpoint's audio features, decoded from the same file and aligned to the frames' timestamps,
   over clips of `clip_length` frames that tile the video (as `ClipDataset` tiles it for training). A video without
   an audio stream gets absent audio features (mask 0, which TMF was built to handle) and a warning.
3. post-processing (`smoothing.postprocess_video`): frames without a face take the nearest face frame's predictions,
   then each task is smoothed as the model's config says (`smoothing_policy`), unless `smoothing` overrides it.

`predict_crops` starts at step 2 from a video's given face crops (an Aff-Wild2 `cropped_aligned/<video>/` folder, the
paper's input; `abaw submit`), with a TMF model's audio from the raw video.

Two decoding passes keep memory flat (no frame is kept) while still choosing the main face with the whole video in
view, so it never switches person half-way. In the second pass a TMF model's clips are fused as soon as their frames
are encoded, with audio decoded and featurised in chunks (`streaming`): no video-long feature array is held. Only
the visual encoder runs in `dtype` on `backend` (`backends`: torch or onnxruntime, float32, bfloat16 or int8; auto
measures which is fastest on the machine): it does nearly all the compute, while the audio backbones and the fusion
transformer are cheap and stay in float32.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping, Sequence

import cv2
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..alignment import LANDMARKS, face_roll
from ..audio import AudioFeatureExtractor
from ..configuration_tmf import VISUAL_MODALITY
from ..errors import InputError
from ..evaluation import affect_predictions
from ..media import Media, open_media, read_image, video_frame_times
from ..modeling_face_mae import FaceMAEForAffect, face_image_processor
from ..modeling_tmf import TMFForAffect
from ..prefetch import prefetch
from ..smoothing import postprocess_video, validate_smoothing_policy
from ..tasks import SMOOTHING_FILTERS, TASKS, default_smoothing_policy
from .backends import EncoderPath, TorchEncoder, VisualEncoder, resolve_encoder
from .checkpoints import load_audio_backbone, load_checkpoint
from .faces import CROP_SCALE, Box, FaceDetector, FaceTrack, FaceTracker, crop_face, face_detector
from .streaming import ClipFusion, FrameOutputs, FrameSources, StreamedAudio, stride_keyframes

BOX_COLUMNS = ("face_x", "face_y", "face_w", "face_h")
# 1 where the encoder saw the frame's face, 0 where its predictions were interpolated (`stride`) or filled (no face).
PREDICTED_COLUMN = "predicted"
ROLL_COLUMN = "face_roll"
LANDMARK_COLUMNS = tuple(f"{name}_{axis}" for name in LANDMARKS for axis in "xy")
# The column naming the decided class of a multiclass task (EXPR, the one such task: its most probable expression).
CLASS_COLUMN = "expression"


def table_face_box(row: pd.Series) -> Box:
    """The face of one row of a pipeline table: its box and, when the table has them (`landmarks=True`), its
    landmarks, from which `faces.crop_face` cuts the crop the model saw."""
    landmarks = None
    if all(column in row.index for column in LANDMARK_COLUMNS) and not row[list(LANDMARK_COLUMNS)].isna().any():
        landmarks = tuple(map(tuple, row[list(LANDMARK_COLUMNS)].to_numpy(dtype=float).reshape(-1, 2)))
    return Box(*row[list(BOX_COLUMNS)].to_numpy(dtype=float), landmarks=landmarks)


class NoFaceWarning(UserWarning):
    """An input in which no face was found: its rows are returned with empty (NaN) predictions."""


class MissingAudioWarning(UserWarning):
    """A video without audio given to a model that uses audio: the audio features are treated as absent."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """ "auto" is the first of cuda, mps and cpu that is available."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise InputError(f"device {device!r}: {error}") from None
    if (device.type == "cuda" and not torch.cuda.is_available()) or (
        device.type == "mps" and not torch.backends.mps.is_available()
    ):
        raise InputError(f"device {str(device)!r} is not available on this machine")
    return device


def is_fusion_model(model) -> bool:
    """A TMFForAffect, whether the package's class or its Hub remote-code copy (a class of another module)."""
    return type(model).__name__ == TMFForAffect.__name__


class AffectPipeline:
    """Predict AU probabilities, expression probabilities and valence/arousal for every frame of a video or image.

    Args:
        model: a `FaceMAEForAffect` (frame-wise) or a `TMFForAffect` (visual + audio fusion over clips).
        visual_model: for a TMF model, the `FaceMAEForAffect` whose pooled features it fuses.
        audio_extractors: for a TMF model, one extractor per audio modality it uses (`config.audio_modalities`).
        encoder: how the visual model runs (`backends.VisualEncoder`; `from_model` resolves its `dtype` and
            `backend` to one); default: the visual model itself, in torch, as it is.
        detector: the face detector; default `faces.face_detector()` (BlazeFace with landmarks, whose
            crops are aligned; the Haar cascade where LiteRT is not installed).
        face_crops: the inputs are already face crops (e.g. Aff-Wild2 `cropped_aligned` images): no detection, the
            whole frame is the face and goes to the image processor as it is.
        batch_size: face crops per encoder forward pass (and clips per fusion forward pass).
        smoothing: temporal post-processing: None for the model's `smoothing_policy`, a filter name of
            `tasks.SMOOTHING_FILTERS` ("none" turns it off) with the paper's per-task parameters, or a policy dict.
        all_faces: return every face found (a `face` column numbers them, 1 = main face), not only the main face.
        detection_size: longer side (pixels) frames are shrunk to for detection and tracking; boxes are reported in
            the original frame's pixels. Faces are found down to ~4% of the longer side by BlazeFace (faces of
            drawn SynthAffect people: all at 4%), ~9% by the Haar detector (24-pixel minimum: 7 of 8 at 7.5%).
        stride: encode every `stride`-th frame of each stretch of face frames (and the stretch's last frame); the
            face frames between take predictions interpolated linearly in time from the encoded ones (for a TMF
            model, the visual features), before smoothing. The `predicted` column marks the encoded frames. Videos
            only: `predict_crops` (challenge submissions) encodes every crop.
        detect_every: frames between full-frame detection scans while faces are being tracked (a face entering
            the picture while another is tracked is found within this many frames: one second at 25 fps).
        min_face_frames: a face must be found in this many frames to count (rejects brief false detections).
        crop_scale: for a detector without landmarks (Haar), the side of the square crop in multiples of the
            detected box's side; crops of faces with landmarks are aligned (`alignment`).
        landmarks: add the landmarks' pixel coordinates to the table (`LANDMARK_COLUMNS`).
        clip_stride: for a TMF model, frames between the starts of consecutive clips; None: the clip length (clips
            tile the video). A smaller stride overlaps the clips, and each frame takes the mean of the predictions of
            the clips covering it (as `train tmf --eval_stride` evaluates).
        progress: show a progress bar per input.
    """

    def __init__(
        self,
        model: FaceMAEForAffect | TMFForAffect,
        visual_model: FaceMAEForAffect | None = None,
        audio_extractors: Mapping[str, AudioFeatureExtractor] | None = None,
        *,
        encoder: VisualEncoder | None = None,
        detector: FaceDetector | None = None,
        face_crops: bool = False,
        batch_size: int = 32,
        smoothing: str | Mapping | None = None,
        all_faces: bool = False,
        detection_size: int = 320,
        stride: int = 1,
        detect_every: int = 25,
        min_face_frames: int = 5,
        crop_scale: float = CROP_SCALE,
        clip_stride: int | None = None,
        landmarks: bool = False,
        progress: bool = False,
    ):
        self.model = model.eval()
        self.is_fusion = is_fusion_model(model)
        self.visual_model = (visual_model if self.is_fusion else model).eval()
        self.audio_extractors = dict(audio_extractors or {})
        if self.is_fusion:
            self._check_fusion_inputs()
        self.encoder = encoder or TorchEncoder(
            self.visual_model, EncoderPath("torch", str(self.visual_model.dtype).removeprefix("torch."))
        )
        if batch_size < 1:
            raise InputError(f"batch_size must be positive, got {batch_size}")
        if stride < 1:
            raise InputError(f"stride must be positive, got {stride}")
        if clip_stride is not None and clip_stride < 1:
            raise InputError(f"clip_stride must be positive, got {clip_stride}")
        self.tasks = list(model.config.tasks)
        self.processor = face_image_processor(self.visual_model.config)
        self.image_size = self.visual_model.config.image_size
        if smoothing is None:
            smoothing = model.config.smoothing_policy
        elif isinstance(smoothing, str):
            if smoothing not in SMOOTHING_FILTERS:
                raise InputError(f"smoothing {smoothing!r}: choose {', '.join(SMOOTHING_FILTERS)} or a policy dict")
            smoothing = default_smoothing_policy(self.tasks, smoothing)
        self.smoothing_policy = validate_smoothing_policy(smoothing)
        self.detector = detector or face_detector()
        self.face_crops, self.batch_size, self.all_faces = face_crops, batch_size, all_faces
        self.detection_size, self.detect_every, self.min_face_frames = detection_size, detect_every, min_face_frames
        self.crop_scale, self.clip_stride, self.progress = crop_scale, clip_stride, progress
        self.landmarks, self.stride = landmarks, stride

    def _check_fusion_inputs(self) -> None:
        config = self.model.config
        if not isinstance(self.visual_model, FaceMAEForAffect):
            raise InputError("a TMFForAffect model needs its FaceMAEForAffect visual backbone (visual_model)")
        sizes = {VISUAL_MODALITY: self.visual_model.config.hidden_size}
        sizes.update({name: extractor.feature_size for name, extractor in self.audio_extractors.items()})
        if sorted(self.audio_extractors) != sorted(config.audio_modalities):
            raise InputError(
                f"the TMF model fuses {config.used_modalities}; audio extractors given for "
                f"{sorted(self.audio_extractors)}"
            )
        for name in config.used_modalities:
            if sizes[name] != config.modalities[name]:
                raise InputError(
                    f"the TMF model takes {config.modalities[name]}-d {name} features; its {name} "
                    f"backbone gives {sizes[name]}-d features"
                )

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str | os.PathLike,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        backend: str = "auto",
        **kwargs,
    ) -> AffectPipeline:
        """Load a FaceMAEForAffect or TMFForAffect checkpoint (local folder or Hub id) and, for TMF, the visual and
        audio backbones its `config.backbones` names (specs as `abaw extract-features` records them: see
        `modeling_abaw.audio`). `kwargs` go to the constructor. Every failure to load is an InputError."""
        model = load_checkpoint(model_name_or_path, (FaceMAEForAffect, TMFForAffect), "model")
        return cls.from_model(model, device, dtype, backend, **kwargs)

    @classmethod
    def from_model(
        cls,
        model,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        backend: str = "auto",
        **kwargs,
    ) -> AffectPipeline:
        """The pipeline of a loaded FaceMAEForAffect or TMFForAffect (the package's class, or the same class loaded
        as Hub remote code, e.g. by `transformers.pipeline`), on `device`, loading a TMF model's backbones. The
        visual encoder runs in `dtype` (auto, float32, bfloat16, int8) on `backend` (auto, torch, onnxruntime):
        `backends.resolve_encoder`, where dtype auto measures the fastest path within
        `backends.PROBABILITY_TOLERANCE` of float32 on this machine (once; the choice is cached)."""
        device = resolve_device(device)
        if not is_fusion_model(model):
            return cls(model, encoder=resolve_encoder(model, device, dtype, backend), **kwargs)
        model = model.to(device)
        backbones = model.config.backbones
        missing = [name for name in model.config.used_modalities if "model" not in backbones.get(name, {})]
        if missing:
            raise InputError(
                f"model {model.name_or_path!r} does not name the backbone of its {missing} features in config.backbones"
            )
        visual = load_checkpoint(backbones[VISUAL_MODALITY]["model"], (FaceMAEForAffect,), "visual backbone")
        extractors = {
            name: load_audio_backbone(name, device=device, **backbones[name]) for name in model.config.audio_modalities
        }
        encoder = resolve_encoder(visual, device, dtype, backend)
        return cls(model, visual, extractors, encoder=encoder, **kwargs)

    @property
    def device(self) -> torch.device:
        return self.encoder.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the encoder takes pixel values in: a torch model's own; float32 for int8 and onnxruntime paths,
        which quantise inside."""
        return self.encoder.dtype

    @property
    def backend_description(self) -> str:
        """How the visual encoder runs and how that was chosen, e.g. "onnxruntime int8 on cpu (auto, ...)"."""
        return self.encoder.description

    def __call__(self, path: str | os.PathLike) -> pd.DataFrame:
        """Predictions for one image or video: one row per frame (and per face with `all_faces`).

        Columns: frame (1-based), timestamp (s, the frame's time by `modeling_abaw.media`'s rule), has_face (0/1;
        0 with predictions = filled from the nearest frame with a face), predicted (0/1: 1 where the encoder saw
        the face, 0 where predictions were interpolated (`stride`) or filled), face_x, face_y, face_w, face_h (pixels of
        the original frame), face_roll (degrees, counter-clockwise, from the landmarks; empty without them), with
        `landmarks` the landmarks' x and y (`LANDMARK_COLUMNS`), then per task of the model: AU probabilities
        (AU1 ... AU26), expression probabilities
        (Neutral ... Other) and `expression` (the most probable), valence and arousal. Without any face,
        predictions are NaN and a NoFaceWarning is issued. Missing or unreadable inputs raise InputError.
        """
        media = open_media(path)
        # disable=None: no bar when stderr is not a terminal (a log file gets no carriage returns).
        bar = tqdm(total=media.num_frames, desc=media.path.name, unit="frame", disable=None if self.progress else True)
        with bar:
            bar.set_postfix_str("faces")
            times, faces = self._find_faces(media, bar)
            if not faces:
                warnings.warn(
                    f"{media.path}: no face found in its {len(times)} frame(s); predictions are empty",
                    NoFaceWarning,
                    stacklevel=2,
                )
                return self._table(times, FaceTrack(), None, None)
            bar.reset(total=len(times))
            bar.set_postfix_str("affect")
            has_face = [np.isin(np.arange(len(times)), list(face.boxes)) for face in faces]
            outputs, encoded = self._encode(media, faces, times, has_face, bar)
        tables = [
            self._table(times, face, postprocess_video(output, mask, self.smoothing_policy), frames)
            for face, output, mask, frames in zip(faces, outputs, has_face, encoded)
        ]
        if not self.all_faces:
            return tables[0]
        for number, table in enumerate(tables, start=1):
            table.insert(1, "face", number)
        return pd.concat(tables, ignore_index=True)

    @torch.inference_mode()
    def predict_frame(self, image: np.ndarray) -> tuple[Box | None, dict[str, np.ndarray]]:
        """The frame model's predictions (task -> (C,) array) for the largest face of one RGB frame (H, W, 3) uint8,
        and its box in the frame's pixels; (None, {}) when no face is found. A single frame has no past to track
        or smooth over and no audio: a TMF pipeline answers with its visual backbone's own heads. This is the live
        webcam path of the Gradio Space, where each frame must be answered on its own."""
        scale = min(1.0, self.detection_size / max(image.shape[:2]))
        small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        boxes = self.detector(small)
        if not boxes:
            return None, {}
        box = max(boxes, key=lambda box: box.area).transformed(1 / scale)
        crop = crop_face(image, box, self.image_size, self.crop_scale)
        pixel_values = self.processor(images=[crop], do_resize=False, return_tensors="pt")["pixel_values"]
        predictions = affect_predictions(self.encoder(pixel_values), self.visual_model.config.tasks)
        return box, {name: values[0].float().cpu().numpy() for name, values in predictions.items()}

    def predict_crops(
        self, crops: Sequence[str | os.PathLike | None], audio_source: str | os.PathLike | None = None
    ) -> dict[str, np.ndarray]:
        """Predictions for a video given as its face crops, e.g. an Aff-Wild2 `cropped_aligned/<video>/` folder (the
        input the paper's models are trained on): `crops[i]` is the crop image of frame i + 1, None where the frame
        has no face. Returns task -> (T, C) arrays, `__call__`'s prediction columns: frames without a crop take the
        nearest face frame's predictions, then the smoothing policy is applied.

        A TMF model takes its audio from `audio_source`, the raw video the crops were cut from, aligned to its frame
        times (`media.video_frame_times`, as `abaw extract-features` aligns it); None: absent audio, with a
        MissingAudioWarning. Raises InputError when no frame has a crop or a crop cannot be read.
        """
        has_face = np.array([crop is not None for crop in crops], dtype=bool)
        if not has_face.any():
            raise InputError(f"none of the {len(crops)} frames has a face crop")
        face_rows = np.flatnonzero(has_face)
        if not self.is_fusion:
            times = np.arange(len(crops), dtype=np.float64)  # every crop is encoded: nothing is interpolated
        elif audio_source is None:
            if self.audio_extractors:
                warnings.warn(
                    f"no video given for the audio; the model's {', '.join(self.audio_extractors)} features are "
                    "treated as absent",
                    MissingAudioWarning,
                    stacklevel=2,
                )
            # The frame times then only count the frames: absent audio gives zeros at any time.
            times = np.arange(len(crops), dtype=np.float64)
        else:
            times = video_frame_times(audio_source, len(crops))
        (sink,) = self._sinks([FrameSources.build(has_face, face_rows, times)], [has_face], times, audio_source)
        bar = tqdm(total=len(face_rows), unit="crop", leave=False, disable=None if self.progress else True)
        with bar:
            for first in range(0, len(face_rows), self.batch_size):
                rows = face_rows[first : first + self.batch_size]
                sink.add(rows, self._encode_crops([read_image(crops[row]) for row in rows], resize=True))
                bar.update(len(rows))
        return postprocess_video(self._finish(sink, audio_source), has_face, self.smoothing_policy)

    def _find_faces(self, media: Media, bar: tqdm) -> tuple[np.ndarray, list[FaceTrack]]:
        """First pass: frame times and the faces, main face first, boxes in original-frame pixels."""
        times, scale = [], 1.0
        tracker = None if self.face_crops else FaceTracker(self.detector, self.detect_every)
        for frame in media.frames(max_side=self.detection_size):
            times.append(frame.time)
            if tracker:
                tracker.update(frame.image)
                scale = media.width / frame.image.shape[1]
            bar.update()
        times = np.asarray(times, dtype=np.float64)
        if self.face_crops:
            whole = Box(0.0, 0.0, float(media.width), float(media.height))
            return times, [FaceTrack(dict.fromkeys(range(len(times)), whole))]
        faces = [
            FaceTrack({index: box.transformed(scale) for index, box in face.boxes.items()})
            for face in tracker.faces(self.min_face_frames)
        ]
        return times, faces if self.all_faces else faces[:1]

    def _encode(
        self, media: Media, faces: list[FaceTrack], times: np.ndarray, has_face: list[np.ndarray], bar: tqdm
    ) -> tuple[list[dict[str, np.ndarray]], list[np.ndarray]]:
        """Second pass: per face, task -> (T, C) predictions (a frame model's: NaN without a face; a TMF model's:
        every frame), and the frames the encoder saw (every face frame, or `stride_keyframes`). Frames are decoded
        and cropped in a background thread while the encoder runs; a TMF model fuses clips as they are encoded."""
        encoded = [stride_keyframes(list(face.boxes), self.stride) for face in faces]
        sources = [FrameSources.build(mask, frames, times) for mask, frames in zip(has_face, encoded)]
        source = None if media.is_image else media.path
        sinks = self._sinks(sources, has_face, times, source)
        for crops, keys in prefetch(self._crop_batches(media, faces, encoded, bar)):
            numbers, indices = np.asarray(keys).T
            outputs = self._encode_crops(crops, resize=self.face_crops)
            for number in np.unique(numbers):
                sinks[number].add(
                    indices[numbers == number], {name: values[numbers == number] for name, values in outputs.items()}
                )
        return [self._finish(sink, source) for sink in sinks], encoded

    def _sinks(
        self, sources: list[FrameSources], has_face: list[np.ndarray], times: np.ndarray, audio_source
    ) -> list[FrameOutputs | ClipFusion]:
        """Per face, what takes its encoded frames: a TMF model's clip fusion (sharing the video's audio, streamed
        from `audio_source`, None: absent) or a frame model's per-frame outputs."""
        if not self.is_fusion:
            return [FrameOutputs(face_sources, mask) for face_sources, mask in zip(sources, has_face)]
        audio = StreamedAudio(self.audio_extractors, audio_source, times, consumers=len(sources))
        return [
            ClipFusion(
                self.model,
                self.tasks,
                face_sources,
                audio,
                consumer=number,
                clip_stride=self.clip_stride,
                batch_size=self.batch_size,
            )
            for number, face_sources in enumerate(sources)
        ]

    def _finish(self, sink: FrameOutputs | ClipFusion, audio_source) -> dict[str, np.ndarray]:
        """The sink's predictions; a MissingAudioWarning when a TMF model's video turned out to have no audio."""
        predictions = sink.finish()
        if isinstance(sink, ClipFusion) and audio_source is not None and self.audio_extractors:
            if not sink.audio.present:
                warnings.warn(
                    f"{audio_source}: no audio; the model's {', '.join(self.audio_extractors)} features are treated "
                    "as absent",
                    MissingAudioWarning,
                    stacklevel=4,
                )
        return predictions

    def _crop_batches(
        self, media: Media, faces: list[FaceTrack], encoded: list[np.ndarray], bar: tqdm
    ) -> Iterator[tuple[list[np.ndarray], list[tuple[int, int]]]]:
        """Batches of (face crops, their (face number, frame index)) of the frames to encode, in frame order."""
        encoded = [set(frames.tolist()) for frames in encoded]
        crops, keys = [], []
        for index, frame in enumerate(media.frames()):
            for number, (face, frames) in enumerate(zip(faces, encoded)):
                if index in frames:
                    crop = (
                        frame.image
                        if self.face_crops
                        else crop_face(frame.image, face.boxes[index], self.image_size, self.crop_scale)
                    )
                    crops.append(crop)
                    keys.append((number, index))
            if len(crops) >= self.batch_size:
                yield crops, keys
                crops, keys = [], []
            bar.update()
        if crops:
            yield crops, keys

    @torch.inference_mode()
    def _encode_crops(self, crops: list[np.ndarray], resize: bool) -> dict[str, np.ndarray]:
        """Task predictions (FaceMAE model) or pooled features (for TMF) of a batch of crops; `resize`: crops not cut
        at the model's size (given face crops, which the processor resizes; detected crops are cut at that size)."""
        pixel_values = self.processor(images=crops, do_resize=resize, return_tensors="pt")["pixel_values"]
        outputs = self.encoder(pixel_values)
        if self.is_fusion:
            return {"features": outputs.features.float().cpu().numpy()}
        return {name: values.float().cpu().numpy() for name, values in affect_predictions(outputs, self.tasks).items()}

    def _table(
        self,
        times: np.ndarray,
        face: FaceTrack,
        predictions: dict[str, np.ndarray] | None,
        encoded: np.ndarray | None,
    ) -> pd.DataFrame:
        num_frames = len(times)
        predicted = np.zeros(num_frames, np.int64)
        if encoded is not None:
            predicted[encoded] = 1
        boxes = np.full((num_frames, 4), np.nan)
        roll = np.full(num_frames, np.nan)
        points = np.full((num_frames, len(LANDMARK_COLUMNS)), np.nan)
        for index, box in face.boxes.items():
            boxes[index] = box[:4]
            if box.landmarks is not None:
                roll[index] = face_roll(np.asarray(box.landmarks))
                points[index] = np.ravel(box.landmarks)
        columns = {
            "frame": np.arange(1, num_frames + 1),
            "timestamp": times,
            "has_face": (~np.isnan(boxes[:, 0])).astype(np.int64),
            PREDICTED_COLUMN: predicted,
            **dict(zip(BOX_COLUMNS, np.round(boxes, 1).T)),
            ROLL_COLUMN: np.round(roll, 1),
        }
        if self.landmarks:
            columns.update(zip(LANDMARK_COLUMNS, np.round(points, 1).T))
        for name in self.tasks:
            task = TASKS[name]
            values = predictions[name] if predictions else np.full((num_frames, task.num_outputs), np.nan)
            columns.update(zip(task.labels, values.T))
            if task.is_multiclass:
                labels = np.asarray(task.labels, dtype=object)[task.decisions(np.nan_to_num(values))]
                columns[CLASS_COLUMN] = np.where(np.isnan(values).any(axis=1), None, labels)
        return pd.DataFrame(columns)
