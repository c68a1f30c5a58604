"""Audio for the multi-modal (TMF) model: decoding, acoustic features and their alignment to video frames.

Conventions shared by everything here:

* Audio is decoded with PyAV from any container it reads, averaged to mono and resampled to 16 kHz float32.
* Times are seconds on the container's timeline, the one video frame pts live on: an `AudioClip` keeps the
  time of its first sample (`start_time`), and every feature's timestamp is the *centre* of the samples it was
  computed from (e.g. HuBERT/wav2vec2 frame k covers samples [320k, 320k + 400), so its time is
  start_time + 0.02 k + 0.0125 s; VGGish example i is at start_time + 0.96 i + 0.4875 s).
* A file without an audio stream (or whose stream decodes to no samples) gives an *absent* clip: an `AudioClip`
  with an empty waveform (`clip.present` is False). Extractors turn it into absent features (0 rows), and
  `align_to_frames` into zeros with a mask of 0, so a silent video never stops a pipeline.
* Alignment rule: a video frame at time t takes the linear interpolation of the two features whose timestamps
  surround t, clamped at the ends — frames before the first feature take the first one, frames after the last
  (e.g. video longer than its audio) take the last one. This needs only the frames' own timestamps, so any frame
  rate, including variable frame rate, works.
"""

import math
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import NamedTuple

import av
import numpy as np
import torch
from transformers import AutoFeatureExtractor, HubertModel, Wav2Vec2Model

from .configuration_vggish import VGGishConfig
from .errors import InputError
from .modeling_vggish import VGGishModel, log_mel_spectrogram

SAMPLE_RATE = 16000

# Default checkpoints: the paper's acoustic features (HuBERT and wav2vec2 base, VGGish). The VGGish weights are
# the torchvggish release converted with hub_scripts/convert_vggish_checkpoint.py.
DEFAULT_MODEL_IDS = {
    "hubert": "facebook/hubert-base-ls960",
    "wav2vec2": "facebook/wav2vec2-base-960h",
    "vggish": "modeling-abaw/vggish",
}
# Features computed without pretrained weights (usable offline, e.g. by the SynthAffect demo).
WEIGHTLESS_FEATURES = ("logmel",)


@dataclass(frozen=True)
class AudioClip:
    """Decoded mono audio.

    Attributes:
        waveform: (num_samples,) float32 in [-1, 1]; empty when the file has no audio (see `present`).
        sample_rate: samples per second of `waveform`.
        start_time: container time (seconds) of the first sample, to line features up with video frame pts.
        path: the file it was decoded from, for messages.
    """

    waveform: np.ndarray
    sample_rate: int = SAMPLE_RATE
    start_time: float = 0.0
    path: str | None = None

    @property
    def present(self) -> bool:
        return self.waveform.size > 0

    @property
    def duration(self) -> float:
        return self.waveform.size / self.sample_rate


@dataclass(frozen=True)
class AudioFeatures:
    """Features of one clip: `values` (N, D) float32 and `timestamps` (N,) float64, the centre (seconds, container
    timeline) of each feature's analysis window, increasing. N = 0 means the audio is absent."""

    values: np.ndarray
    timestamps: np.ndarray

    @property
    def present(self) -> bool:
        return len(self.values) > 0


class AlignedAudio(NamedTuple):
    """Audio features resampled to video frames: `values` (T, D) float32, `mask` (T,) int64, 1 where the frame has
    audio and 0 where it is absent (values are then zeros)."""

    values: np.ndarray
    mask: np.ndarray


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> AudioClip:
    """Decode the first audio stream of a media file to mono float32 at `sample_rate`.

    Channels are averaged (as VGGish's reference input code does) rather than left to FFmpeg's downmix, which
    scales stereo by 1/sqrt(2) per channel and can leave [-1, 1]. A file without an audio stream returns an absent
    clip (empty waveform); a missing file raises FileNotFoundError and a file PyAV cannot read raises InputError.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such media file: {path}")
    pieces, start_time = [], None
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                return AudioClip(np.zeros(0, np.float32), sample_rate, 0.0, path)
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", rate=sample_rate)
            for frame in container.decode(stream):
                if start_time is None:
                    start_time = float(frame.time) if frame.time is not None else 0.0
                pieces += [resampled.to_ndarray() for resampled in resampler.resample(frame)]
            pieces += [resampled.to_ndarray() for resampled in resampler.resample(None)]
    except av.error.FFmpegError as error:
        raise InputError(f"{path}: cannot decode audio ({error})") from error
    if not pieces:
        return AudioClip(np.zeros(0, np.float32), sample_rate, 0.0, path)
    waveform = np.concatenate(pieces, axis=1).mean(axis=0, dtype=np.float32)
    return AudioClip(waveform, sample_rate, start_time, path)


def align_to_frames(features: AudioFeatures, frame_timestamps) -> AlignedAudio:
    """Give every video frame the audio feature at its timestamp (seconds, container timeline, e.g. decoder pts).

    Linear interpolation between the neighbouring feature timestamps, clamped at both ends (see the module
    docstring). Frame timestamps need not be regular or sorted. Absent features give zeros and a mask of 0.
    """
    frame_times = np.asarray(frame_timestamps, dtype=np.float64).reshape(-1)
    if np.isnan(frame_times).any():
        raise ValueError("Frame timestamps contain NaN; every frame needs a time to be aligned with audio.")
    num_frames, feature_size = len(frame_times), features.values.shape[1]
    if not features.present:
        return AlignedAudio(np.zeros((num_frames, feature_size), np.float32), np.zeros(num_frames, np.int64))

    times, values = features.timestamps, features.values.astype(np.float32, copy=False)
    if len(times) == 1:
        aligned = np.repeat(values, num_frames, axis=0)
    else:
        upper = np.clip(np.searchsorted(times, frame_times, side="right"), 1, len(times) - 1)
        lower = upper - 1
        weight = np.clip((frame_times - times[lower]) / (times[upper] - times[lower]), 0.0, 1.0)
        weight = weight[:, None].astype(np.float32)
        aligned = (1.0 - weight) * values[lower] + weight * values[upper]
    return AlignedAudio(aligned.astype(np.float32, copy=False), np.ones(num_frames, np.int64))


class AudioFeatureExtractor(ABC):
    """A pretrained audio encoder producing features on a regular grid of analysis windows.

    Window k covers samples [k * stride, k * stride + receptive_field) of the clip. Long clips are processed in
    chunks of `chunk_seconds` of windows, each run with `context_seconds` of extra audio on both sides (for models
    whose windows see beyond their own samples, like the SSL transformers); only the chunk's own windows are kept,
    so the stitched output has every window exactly once and continuous timestamps, and memory is bounded.
    """

    name: str
    model_id: str
    feature_size: int
    receptive_field: int
    stride: int
    sample_rate: int = SAMPLE_RATE

    def __init__(self, chunk_seconds: float = 30.0, context_seconds: float = 0.0):
        self.chunk_seconds = chunk_seconds
        self.context_seconds = context_seconds

    @abstractmethod
    def _encode(self, segment: np.ndarray) -> np.ndarray:
        """Features (num_windows, feature_size) of a segment at least `receptive_field` samples long."""

    def _prepare(self, waveform: np.ndarray) -> np.ndarray:
        """Whole-clip input normalisation, done before chunking so every chunk sees the same scaling."""
        return waveform

    def __call__(self, audio: AudioClip) -> AudioFeatures:
        if audio.sample_rate != self.sample_rate:
            raise ValueError(f"{self.name} expects {self.sample_rate} Hz audio, got {audio.sample_rate} Hz.")
        if not audio.present:
            return AudioFeatures(np.zeros((0, self.feature_size), np.float32), np.zeros(0, np.float64))

        waveform = self._prepare(audio.waveform.astype(np.float32, copy=False))
        if len(waveform) < self.receptive_field:
            # Zero-pad a clip shorter than one window so that any non-empty audio gives at least one feature.
            waveform = np.pad(waveform, (0, self.receptive_field - len(waveform)))
        num_windows = 1 + (len(waveform) - self.receptive_field) // self.stride
        chunk = max(1, round(self.chunk_seconds * self.sample_rate / self.stride))
        context = math.ceil(self.context_seconds * self.sample_rate / self.stride)

        pieces = []
        for first in range(0, num_windows, chunk):
            last = min(first + chunk, num_windows)
            left = min(context, first)
            start = (first - left) * self.stride
            end = min(len(waveform), (last - 1 + context) * self.stride + self.receptive_field)
            pieces.append(self._encode(waveform[start:end])[left : left + last - first])
        values = np.concatenate(pieces).astype(np.float32, copy=False)
        if len(values) != num_windows:
            raise RuntimeError(f"{self.name} gave {len(values)} frames where its conv geometry predicts {num_windows}.")

        centres = np.arange(num_windows) * self.stride + self.receptive_field / 2
        return AudioFeatures(values, audio.start_time + centres / self.sample_rate)


class SSLAudioExtractor(AudioFeatureExtractor):
    """HuBERT / wav2vec2 hidden states of one layer (0 = input of the first transformer layer, default: last).

    Frames are those of the convolutional feature encoder (20 ms hop, 25 ms receptive field for the base and
    large models). Input normalisation follows the checkpoint's feature extractor when it has one
    (preprocessor_config.json); otherwise the raw waveform is used. The default 5 s of context keeps chunk
    boundaries close to whole-clip results; models with group norm in the feature encoder (the base models) see
    per-chunk statistics, so chunked and whole-clip features agree only approximately for them.
    """

    def __init__(
        self,
        name: str,
        model_class: type[HubertModel] | type[Wav2Vec2Model],
        model_id: str,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        layer: int | None = None,
        chunk_seconds: float = 30.0,
        context_seconds: float = 5.0,
    ):
        super().__init__(chunk_seconds, context_seconds)
        self.name, self.model_id, self.device = name, model_id, torch.device(device)
        self.model = model_class.from_pretrained(model_id, dtype=dtype).to(self.device).eval()
        try:
            self.feature_extractor = AutoFeatureExtractor.from_pretrained(model_id)
        except OSError:
            self.feature_extractor = None

        config = self.model.config
        num_layers = config.num_hidden_layers
        layer = num_layers if layer is None else layer
        if not -(num_layers + 1) <= layer <= num_layers:
            raise InputError(f"{name} ({model_id}) has hidden layers 0..{num_layers}; layer {layer} does not exist.")
        self.layer = layer % (num_layers + 1)
        self.feature_size = config.hidden_size
        self.stride = math.prod(config.conv_stride)
        self.receptive_field = _receptive_field(config.conv_kernel, config.conv_stride)

    def _prepare(self, waveform: np.ndarray) -> np.ndarray:
        if self.feature_extractor is None:
            return waveform
        inputs = self.feature_extractor(waveform, sampling_rate=self.sample_rate, return_tensors="np")
        return inputs["input_values"][0].astype(np.float32, copy=False)

    @torch.inference_mode()
    def _encode(self, segment: np.ndarray) -> np.ndarray:
        input_values = torch.from_numpy(segment)[None].to(self.device, self.model.dtype)
        hidden_states = self.model(input_values, output_hidden_states=True).hidden_states
        return hidden_states[self.layer][0].float().cpu().numpy()


class VGGishExtractor(AudioFeatureExtractor):
    """VGGish embeddings, one per 0.96 s example (`example_hop_seconds` overrides the checkpoint's hop for denser
    features). Examples never look outside their own samples, so chunking is exact. With the released
    post-processing the values are quantised to 0..255."""

    name = "vggish"

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_IDS["vggish"],
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        example_hop_seconds: float | None = None,
        chunk_seconds: float = 30.0,
    ):
        super().__init__(chunk_seconds)
        self.model_id, self.device = model_id, torch.device(device)
        overrides = {} if example_hop_seconds is None else {"example_hop_seconds": example_hop_seconds}
        self.model = VGGishModel.from_pretrained(model_id, dtype=dtype, **overrides).to(self.device).eval()
        config = self.model.config
        self.sample_rate = config.sample_rate
        self.feature_size = config.embedding_size
        self.stride = config.example_hop_samples
        self.receptive_field = config.example_window_samples

    @torch.inference_mode()
    def _encode(self, segment: np.ndarray) -> np.ndarray:
        embeddings = self.model(input_values=torch.from_numpy(segment).to(self.device)).embeddings
        return embeddings.float().cpu().numpy()


class LogMelExtractor(AudioFeatureExtractor):
    """VGGish's log-mel front end alone: 64 mel bands (125-7500 Hz) of 25 ms windows every 10 ms. A classic
    acoustic feature that needs no pretrained weights, so it works offline (the demo uses it where the Hub is out of
    reach); windows never look outside their samples, so chunking is exact."""

    name = "logmel"
    model_id = "vggish-log-mel"

    def __init__(self, chunk_seconds: float = 30.0):
        super().__init__(chunk_seconds)
        self.config = VGGishConfig()
        self.feature_size = self.config.num_mel_bins
        self.stride = self.config.stft_hop_samples
        self.receptive_field = self.config.stft_window_samples

    def _encode(self, segment: np.ndarray) -> np.ndarray:
        return log_mel_spectrogram(torch.from_numpy(segment), self.config).numpy()


def _receptive_field(kernels, strides) -> int:
    """Samples seen by one output frame of a stack of unpadded 1-d convolutions."""
    field, jump = 1, 1
    for kernel, stride in zip(kernels, strides):
        field += (kernel - 1) * jump
        jump *= stride
    return field


def load_audio_extractor(
    name_or_spec: str,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    **options,
) -> AudioFeatureExtractor:
    """Build an extractor from "hubert", "wav2vec2" or "vggish", optionally followed by ":<Hub id or local path>"
    (e.g. "hubert:facebook/hubert-large-ll60k"), or "logmel" (no weights). `options` go to the extractor: `layer`,
    `chunk_seconds`, `context_seconds` for the SSL models; `example_hop_seconds`, `chunk_seconds` for VGGish;
    `chunk_seconds` for logmel."""
    name, _, model_id = name_or_spec.partition(":")
    if name in WEIGHTLESS_FEATURES and not model_id:
        return LogMelExtractor(**options)
    if name not in DEFAULT_MODEL_IDS:
        raise InputError(
            f"Unknown audio feature {name_or_spec!r}; choose from "
            f"{', '.join([*DEFAULT_MODEL_IDS, *WEIGHTLESS_FEATURES])} (the pretrained ones as NAME:MODEL_ID_OR_PATH)."
        )
    model_id = model_id or DEFAULT_MODEL_IDS[name]
    if name == "vggish":
        return VGGishExtractor(model_id, device, dtype, **options)
    model_class = HubertModel if name == "hubert" else Wav2Vec2Model
    return SSLAudioExtractor(name, model_class, model_id, device, dtype, **options)
