"""The per-frame feature cache for TMF (paper Sec. 3.2): the encoders are frozen, so features are extracted once.

A cache is a folder:

    features.json                 {"format": 1, "modalities": {"mae": 768, "hubert": 768, ...},
                                   "backbones": {"mae": {"model": ...}, "hubert": {"model": ..., "layer": 12}, ...}}
    videos/<video>.safetensors    one file per annotated video (Aff-Wild2 name, e.g. `12-24-1920x1080_left`)

Each video file holds, for its frames 1..T in order (T = the frames of its annotation files):
    frame (T,) int32             1-based frame numbers
    has_face (T,) float32         1 where the frame has a face crop
    mae (T, D) float32            FaceMAEForAffect pooled features; frames without a face take the nearest face frame's
    <audio> (T, D) float32        audio features aligned to the frame times (`modeling_abaw.media.video_frame_times`,
                                  the rule `AffectPipeline` follows too; `modeling_abaw.audio.align_to_frames`)
    <audio>_mask (T,) float32     1 where audio exists (a video without an audio stream has zeros here)

The backbones are canonical specs that `TMFConfig.backbones` copies and `AffectPipeline.from_pretrained` loads back
as they are: the visual model and each audio extractor's `backbone` (`modeling_abaw.audio`), where a model is a Hub id
or an absolute folder path (`inference.model_reference`), so a TMF checkpoint works from any working directory;
weightless features (logmel) record `"model": null`.

safetensors files are memory-mapped and self-describing (their metadata repeats the backbones), and a clip reads only
its rows. A video file is written under a temporary name and renamed, so an interrupted extraction leaves no
half-written video, and a re-run skips the videos already done.
"""

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from .audio import align_to_frames, parse_audio_argument
from .configuration_tmf import VISUAL_MODALITY
from .data.affwild2 import AffWild2, find_raw_video
from .errors import InputError
from .inference.checkpoints import load_audio_backbone, load_checkpoint, model_reference
from .io import atomic_path, write_json
from .media import load_audio, video_frame_times
from .modeling_face_mae import FaceMAEForAffect, face_image_processor
from .processes import on_main_process, outputs_progress, share
from .smoothing import fill_missing_frames
from .tasks import TASK_NAMES

CACHE_FORMAT = 1
INDEX_FILE = "features.json"


class FeatureCache:
    """Read access to a feature cache folder (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        index_path = self.path / INDEX_FILE
        if not index_path.is_file():
            raise InputError(
                f"{self.path}: not a feature cache (no {INDEX_FILE}); create one with `abaw extract-features`"
            )
        index = json.loads(index_path.read_text())
        if index.get("format") != CACHE_FORMAT:
            raise InputError(f"{index_path}: cache format {index.get('format')!r}, this version reads {CACHE_FORMAT}")
        self.modalities: dict[str, int] = index["modalities"]
        self.backbones: dict[str, dict] = index["backbones"]

    @classmethod
    def create(cls, path: str | os.PathLike, modalities: dict[str, int], backbones: dict[str, dict]) -> "FeatureCache":
        """Open the cache at `path`, creating it; an existing cache must have been made by the same backbones."""
        path = Path(path)
        index = {"format": CACHE_FORMAT, "modalities": modalities, "backbones": backbones}
        if (path / INDEX_FILE).exists():
            cache = cls(path)
            if (cache.modalities, cache.backbones) != (modalities, backbones):
                raise InputError(
                    f"{path} holds features of other backbones ({cache.backbones}); choose another --output folder"
                )
            return cache
        (path / "videos").mkdir(parents=True, exist_ok=True)
        write_json(path / INDEX_FILE, index, sort_keys=True)
        return cls(path)

    @property
    def audio_modalities(self) -> list[str]:
        return [name for name in self.modalities if name != VISUAL_MODALITY]

    @property
    def videos(self) -> list[str]:
        return sorted(entry.name[: -len(".safetensors")] for entry in (self.path / "videos").glob("*.safetensors"))

    def video_path(self, video: str) -> Path:
        return self.path / "videos" / f"{video}.safetensors"

    def has(self, video: str) -> bool:
        return self.video_path(video).is_file()

    def write_video(self, video: str, tensors: dict[str, torch.Tensor]) -> None:
        expected = {"frame", "has_face", *self.modalities, *(f"{name}_mask" for name in self.audio_modalities)}
        if set(tensors) != expected:
            raise ValueError(f"{video}: cache entries {sorted(tensors)} differ from {sorted(expected)}")
        with atomic_path(self.video_path(video)) as temporary:
            save_file(
                {k: v.contiguous() for k, v in tensors.items()},
                temporary,
                metadata={"backbones": json.dumps(self.backbones)},
            )

    def load_features(self, video: str, start: int, stop: int) -> dict[str, torch.Tensor]:
        """Rows start..stop-1 (frames start+1..stop) of every modality and audio mask: `ClipDataset`'s loader."""
        if not self.has(video):
            raise InputError(
                f"{self.path}: no features for video {video!r}; run `abaw extract-features` on its dataset"
            )
        names = [*self.modalities, *(f"{name}_mask" for name in self.audio_modalities)]
        with safe_open(self.video_path(video), framework="pt") as file:
            return {name: file.get_slice(name)[start:stop] for name in names}


@torch.inference_mode()
def extract_features(
    data: str | os.PathLike,
    visual_model: str,
    output: str | os.PathLike,
    audio: Sequence[str] = (),
    video_dirs: Sequence[str | os.PathLike] | None = None,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    batch_size: int = 64,
) -> FeatureCache:
    """Extract the visual and frame-aligned audio features of every annotated video of an Aff-Wild2-layout dataset.

    `visual_model` is a FaceMAEForAffect folder or Hub id; `audio` names audio extractors in the command-line form
    (`hubert`, `wav2vec2`, `vggish`, `logmel`, the pretrained ones optionally as `name:model_id_or_folder`). Raw
    videos (for the audio and the frame times) are looked up in `video_dirs` (default: `<data>/videos` and
    `<data>`); a video without a raw file or audio stream gets absent audio.

    Under `accelerate launch` (or `abaw extract-features --num-processes`), each process extracts its share of the
    videos to do on its own `device`, and the main process writes the index.
    """
    state = PartialState(cpu=torch.device(device).type != "cuda")
    dataset = AffWild2(data)
    visual_model = model_reference(visual_model, "visual model")
    model = load_checkpoint(visual_model, (FaceMAEForAffect,), "visual model").to(device, dtype).eval()
    processor = face_image_processor(model.config)  # the preprocessing AffectPipeline applies to its crops
    extractors = [
        load_audio_backbone(*parse_audio_argument(argument), device=device, dtype=dtype) for argument in audio
    ]
    modalities = {VISUAL_MODALITY: model.config.hidden_size, **{e.name: e.feature_size for e in extractors}}
    backbones = {VISUAL_MODALITY: {"model": visual_model}, **{e.name: e.backbone for e in extractors}}
    on_main_process(state, lambda: FeatureCache.create(output, modalities, backbones))
    cache = FeatureCache(output)
    video_dirs = [Path(d) for d in video_dirs] if video_dirs else [Path(data) / "videos", Path(data)]
    splits = sorted({split for task in TASK_NAMES for split in dataset.splits(task)})
    table = dataset.frame_table(splits=splits)
    # The table is ordered by video then frame: each video is one run of rows.
    names, frames, face_column = (table.with_format("numpy")[column][:] for column in ("video", "frame", "has_face"))
    image_paths = table["image_path"]
    starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]])
    runs = {names[start]: (start, stop) for start, stop in zip(starts, np.r_[starts[1:], len(names)])}
    todo = [video for video in sorted(runs) if not cache.has(video)]
    mine = [todo[index] for index in share([runs[video][1] - runs[video][0] for video in todo], state)]
    several = state.num_processes > 1  # then the main process shows the videos done by all, not its own
    with outputs_progress(
        [cache.video_path(video) for video in todo], state.is_main_process and several, "extract features", "video"
    ):
        state.wait_for_everyone()  # every process has listed the videos to do before any process writes one
        for video in tqdm(mine, desc="extract features", unit="video", disable=None if mine and not several else True):
            start, stop = runs[video]
            has_face = face_column[start:stop].astype(bool)
            tensors = {
                "frame": torch.as_tensor(frames[start:stop], dtype=torch.int32),
                "has_face": torch.as_tensor(has_face, dtype=torch.float32),
                VISUAL_MODALITY: _visual_features(
                    model, processor, image_paths[start:stop], has_face, batch_size, device
                ),
            }
            tensors.update(_audio_features(extractors, video, len(has_face), video_dirs))
            cache.write_video(video, tensors)
        state.wait_for_everyone()  # the cache is complete when any process returns it
    return cache


def _visual_features(model, processor, image_paths, has_face, batch_size, device) -> torch.Tensor:
    features = np.zeros((len(has_face), model.config.hidden_size), dtype=np.float32)
    face_rows = np.flatnonzero(has_face)
    for start in range(0, len(face_rows), batch_size):
        rows = face_rows[start : start + batch_size]
        images = [Image.open(image_paths[row]).convert("RGB") for row in rows]
        pixel_values = processor(images=images, return_tensors="pt")["pixel_values"].to(device, model.dtype)
        features[rows] = model(pixel_values).features.float().cpu().numpy()
    return torch.from_numpy(fill_missing_frames(features, has_face))


def _audio_features(extractors, video: str, num_frames: int, video_dirs) -> dict[str, torch.Tensor]:
    if not extractors:
        return {}
    try:
        raw_video = find_raw_video(video, video_dirs)
        times, clip = video_frame_times(raw_video, num_frames), load_audio(raw_video)
    except InputError as error:
        tqdm.write(f"{error}; the audio features of {video!r} are absent")
        times, clip = None, None
    tensors = {}
    for extractor in extractors:
        if clip is None:
            values, mask = np.zeros((num_frames, extractor.feature_size), np.float32), np.zeros(num_frames)
        else:
            values, mask = align_to_frames(extractor(clip), times)
        tensors[extractor.name] = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        tensors[f"{extractor.name}_mask"] = torch.as_tensor(mask, dtype=torch.float32)
    return tensors
