"""Audio features for the multi-modal (TMF) model and their alignment to video frames.

Conventions shared by everything here:

* Audio comes decoded by `modeling_abaw.media.load_audio`: mono, 16 kHz float32, on the container's timeline, the
  one video frame timestamps live on (`media.video_frame_times`). An `AudioClip` keeps the time of its first sample
  (`start_time`), and every feature's timestamp is the *centre* of the samples it was computed from (e.g.
  HuBERT/wav2vec2 frame k covers samples [320k, 320k + 400), so its time is start_time + 0.02 k + 0.0125 s; VGGish
  example i is at start_time + 0.96 i + 0.4875 s).
* An absent clip (a file without audio) gives absent features (0 rows), and `align_to_frames` turns them into zeros
  with a mask of 0, so a silent video never stops a pipeline.
* Alignment rule: a video frame at time t takes the linear interpolation of the two features whose timestamps
  surround t, clamped at the ends — frames before the first feature take the first one, frames after the last
  (e.g. video longer than its audio) take the last one. This needs only the frames' own timestamps, so any frame
  rate, including variable frame rate, works.
* Backbone specs: every extractor describes itself by `extractor.backbone`, a JSON-able dict `{"model": <Hub id or
  folder, None for weightless features>, **options}` that `load_audio_extractor(name, **backbone)` takes back to
  rebuild it. Feature caches and TMF configs (`config.backbones[name]`) record exactly this dict.
"""

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from transformers import AutoFeatureExtractor, HubertModel, Wav2Vec2Model

from .configuration_vggish import VGGishConfig
from .errors import InputError
from .media import SAMPLE_RATE, AudioClip
from .modeling_vggish import VGGishModel, log_mel_spectrogram

# Default checkpoints: the paper's acoustic features (HuBERT and wav2vec2 base, VGGish). The VGGish weights are
# the torchvggish release converted with hub_scripts/convert_vggish_checkpoint.py.
DEFAULT_MODEL_IDS = {
    "hubert": "facebook/hubert-base-ls960",
    "wav2vec2": "facebook/wav2vec2-base-960h",
    "vggish": "modeling-abaw/vggish",
}
# Features computed without pretrained weights (usable offline, e.g. by the SynthAffect demo): their spec's model is
# None.
WEIGHTLESS_FEATURES = ("logmel",)
AUDIO_FEATURES = (*DEFAULT_MODEL_IDS, *WEIGHTLESS_FEATURES)


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
    """An audio encoder producing features on a regular grid of analysis windows.

    Window k covers samples [k * stride, k * stride + receptive_field) of the clip. Long clips are processed in
    chunks of `chunk_seconds` of windows, each run with `context_seconds` of extra audio on both sides (for models
    whose windows see beyond their own samples, like the SSL transformers); only the chunk's own windows are kept,
    so the stitched output has every window exactly once and continuous timestamps, and memory is bounded. `stream`
    does the same on audio that arrives in pieces (`media.stream_audio`), so a long video's audio is never whole.

    `backbone` is the extractor's spec (module docstring): `load_audio_extractor(name, **backbone)` rebuilds it.
    """

    name: str
    model_id: str | None
    feature_size: int
    receptive_field: int
    stride: int
    sample_rate: int = SAMPLE_RATE

    def __init__(self, chunk_seconds: float = 30.0, context_seconds: float = 0.0):
        self.chunk_seconds = chunk_seconds
        self.context_seconds = context_seconds

    @property
    def backbone(self) -> dict:
        """The spec that rebuilds this extractor: the model and the options that shape its features."""
        return {"model": self.model_id}

    @abstractmethod
    def _encode(self, segment: np.ndarray) -> np.ndarray:
        """Features (num_windows, feature_size) of a segment at least `receptive_field` samples long."""

    def _normaliser(self, clips: Callable[[], Iterable[AudioClip]]) -> Callable[[np.ndarray], np.ndarray] | None:
        """The whole-clip input normalisation, applied to every piece of the clip before chunking so every chunk
        sees the same scaling; None: none. May read the clip once (`clips()`) for its statistics."""
        return None

    def __call__(self, audio: AudioClip) -> AudioFeatures:
        """The features of a whole clip (`stream` on it, concatenated)."""
        pieces = list(self.stream(lambda: [audio]))
        if not pieces:
            return AudioFeatures(np.zeros((0, self.feature_size), np.float32), np.zeros(0, np.float64))
        return AudioFeatures(
            np.concatenate([piece.values for piece in pieces]), np.concatenate([piece.timestamps for piece in pieces])
        )

    def stream(self, clips: Callable[[], Iterable[AudioClip]]) -> Iterator[AudioFeatures]:
        """The features of a clip given as consecutive pieces (e.g. `media.stream_audio`), a chunk of windows at a
        time, each as soon as its samples (and their context) have arrived: the same values as the whole clip's,
        with memory bounded by the chunk. `clips()` starts the pieces from the beginning; it is called twice when
        the normalisation needs the whole clip's statistics. No pieces (or empty ones): absent audio, no features.
        """
        normalise = self._normaliser(clips)
        chunk = max(1, round(self.chunk_seconds * self.sample_rate / self.stride))
        context = math.ceil(self.context_seconds * self.sample_rate / self.stride)
        buffer, buffer_start, total, first, start_time = np.zeros(0, np.float32), 0, 0, 0, None

        def windows(last: int) -> AudioFeatures:
            """Windows [first, last), encoded with up to `context` windows of audio on each side."""
            left = min(context, first)
            start = (first - left) * self.stride
            end = min(total, (last - 1 + context) * self.stride + self.receptive_field)
            values = self._encode(buffer[start - buffer_start : end - buffer_start])[left : left + last - first]
            if len(values) != last - first:
                raise RuntimeError(
                    f"{self.name} gave {len(values)} frames where its conv geometry predicts {last - first}."
                )
            centres = np.arange(first, last) * self.stride + self.receptive_field / 2
            return AudioFeatures(values.astype(np.float32, copy=False), start_time + centres / self.sample_rate)

        for clip in clips():
            if clip.sample_rate != self.sample_rate:
                raise ValueError(f"{self.name} expects {self.sample_rate} Hz audio, got {clip.sample_rate} Hz.")
            if not clip.present:
                continue
            if start_time is None:
                start_time = clip.start_time
            waveform = clip.waveform.astype(np.float32, copy=False)
            buffer = np.concatenate([buffer, normalise(waveform) if normalise else waveform])
            total += len(waveform)
            # A full chunk of windows is encoded once its right context has arrived too: then its segment is the
            # one the whole clip would give it.
            while total >= (first + chunk - 1 + context) * self.stride + self.receptive_field:
                yield windows(first + chunk)
                first += chunk
                keep = (first - min(context, first)) * self.stride  # the next chunk's left context onwards
                buffer, buffer_start = buffer[keep - buffer_start :], keep
        if start_time is None:
            return
        if total < self.receptive_field:
            # Zero-pad a clip shorter than one window so that any non-empty audio gives at least one feature.
            buffer, total = np.pad(buffer, (0, self.receptive_field - total)), self.receptive_field
        num_windows = 1 + (total - self.receptive_field) // self.stride
        while first < num_windows:
            yield windows(min(first + chunk, num_windows))
            first = min(first + chunk, num_windows)


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
        local_files_only: bool = False,
    ):
        super().__init__(chunk_seconds, context_seconds)
        self.name, self.model_id, self.device = name, model_id, torch.device(device)
        self.model = model_class.from_pretrained(model_id, dtype=dtype, local_files_only=local_files_only)
        self.model = self.model.to(self.device).eval()
        try:
            self.feature_extractor = AutoFeatureExtractor.from_pretrained(model_id, local_files_only=local_files_only)
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

    @property
    def backbone(self) -> dict:
        return {"model": self.model_id, "layer": self.layer}

    def _normaliser(self, clips: Callable[[], Iterable[AudioClip]]) -> Callable[[np.ndarray], np.ndarray] | None:
        """The checkpoint feature extractor's zero-mean unit-variance normalisation (`do_normalize`), with the
        whole clip's mean and variance, gathered over its pieces in float64 (Chan et al.'s pairwise update)."""
        if not getattr(self.feature_extractor, "do_normalize", False):
            return None
        count, mean, squares = 0, 0.0, 0.0
        for clip in clips():
            if not clip.present:
                continue
            values = clip.waveform.astype(np.float64)
            piece_mean, piece_squares = values.mean(), ((values - values.mean()) ** 2).sum()
            delta, total = piece_mean - mean, count + len(values)
            mean += delta * len(values) / total
            squares += piece_squares + delta**2 * count * len(values) / total
            count = total
        scale = 1.0 / math.sqrt(squares / max(count, 1) + 1e-7)
        return lambda waveform: ((waveform - mean) * scale).astype(np.float32)

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
        local_files_only: bool = False,
    ):
        super().__init__(chunk_seconds)
        self.model_id, self.device = model_id, torch.device(device)
        overrides = {} if example_hop_seconds is None else {"example_hop_seconds": example_hop_seconds}
        self.model = VGGishModel.from_pretrained(model_id, dtype=dtype, local_files_only=local_files_only, **overrides)
        self.model = self.model.to(self.device).eval()
        config = self.model.config
        self.sample_rate = config.sample_rate
        self.feature_size = config.embedding_size
        self.stride = config.example_hop_samples
        self.receptive_field = config.example_window_samples

    @property
    def backbone(self) -> dict:
        return {"model": self.model_id, "example_hop_seconds": self.model.config.example_hop_seconds}

    @torch.inference_mode()
    def _encode(self, segment: np.ndarray) -> np.ndarray:
        embeddings = self.model(input_values=torch.from_numpy(segment).to(self.device)).embeddings
        return embeddings.float().cpu().numpy()


class LogMelExtractor(AudioFeatureExtractor):
    """VGGish's log-mel front end alone: 64 mel bands (125-7500 Hz) of 25 ms windows every 10 ms. A classic
    acoustic feature that needs no pretrained weights, so it works offline (the demo uses it where the Hub is out of
    reach); windows never look outside their samples, so chunking is exact."""

    name = "logmel"
    model_id = None

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


def parse_audio_argument(text: str) -> tuple[str, str | None]:
    """The command-line form NAME or NAME:MODEL (e.g. "hubert:facebook/hubert-large-ll60k", "vggish:./vggish")
    -> (NAME, MODEL), MODEL defaulting to `DEFAULT_MODEL_IDS[NAME]` (None for weightless features)."""
    name, _, model = text.strip().partition(":")
    return name, model or DEFAULT_MODEL_IDS.get(name)


def load_audio_extractor(
    name: str,
    model: str | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    local_files_only: bool = False,
    **options,
) -> AudioFeatureExtractor:
    """Build the extractor of feature `name` ("hubert", "wav2vec2", "vggish" or the weightless "logmel") from
    `model`, a Hub id or local folder (default: `DEFAULT_MODEL_IDS[name]`; None for logmel). `options` go to the
    extractor: `layer`, `chunk_seconds`, `context_seconds` for the SSL models; `example_hop_seconds`,
    `chunk_seconds` for VGGish; `chunk_seconds` for logmel. `load_audio_extractor(name, **extractor.backbone)`
    rebuilds an extractor. A model that cannot be loaded raises InputError."""
    if name not in AUDIO_FEATURES:
        raise InputError(
            f"unknown audio feature {name!r}; choose from {', '.join(AUDIO_FEATURES)} "
            "(the pretrained ones optionally as NAME:MODEL_ID_OR_FOLDER)"
        )
    if name in WEIGHTLESS_FEATURES:
        if model is not None:
            raise InputError(f"audio feature {name!r} has no weights; it takes no model (got {model!r})")
        return LogMelExtractor(**options)
    model = model or DEFAULT_MODEL_IDS[name]
    try:
        if name == "vggish":
            return VGGishExtractor(model, device, dtype, local_files_only=local_files_only, **options)
        model_class = HubertModel if name == "hubert" else Wav2Vec2Model
        return SSLAudioExtractor(name, model_class, model, device, dtype, local_files_only=local_files_only, **options)
    except InputError:
        raise
    except (OSError, ValueError) as error:  # a missing or broken checkpoint, as transformers reports it
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{name} backbone {model!r}: cannot load it ({reason})") from error
