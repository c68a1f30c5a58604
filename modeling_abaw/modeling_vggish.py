"""VGGish (Hershey et al., "CNN Architectures for Large-Scale Audio Classification", ICASSP 2017) as a
transformers model.

The layers and their state-dict names are those of the public PyTorch port (harritaylor/torchvggish), so its
weights load with a plain key mapping (see modeling_abaw/conversion/vggish.py). The log-mel front end of
vggish_input.py / mel_features.py is re-implemented in torch so the model takes raw 16 kHz waveforms.

Hub remote-code file: it imports only torch, transformers and the configuration file beside it.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_vggish import VGGishConfig


@dataclass
class VGGishOutput(ModelOutput):
    """
    Args:
        embeddings (`torch.FloatTensor` of shape `(num_examples, embedding_size)`, or `(batch, num_examples,
            embedding_size)` for a batch of waveforms): one embedding per 0.96 s example. With
            `config.postprocess` they are PCA-whitened and quantised to integers in [0, 255] (stored as floats).
        timestamps (`torch.FloatTensor` of shape `(num_examples,)`): centre of each example's analysis window, in
            seconds from the first sample of `input_values`.
    """

    embeddings: torch.FloatTensor | None = None
    timestamps: torch.FloatTensor | None = None


def hertz_to_mel(frequencies: torch.Tensor) -> torch.Tensor:
    """The HTK mel scale used by vggish's mel_features.py."""
    return 1127.0 * torch.log(1.0 + frequencies / 700.0)


def mel_weight_matrix(config: VGGishConfig, num_spectrogram_bins: int, device=None) -> torch.Tensor:
    """Triangular mel filters of shape (num_spectrogram_bins, num_mel_bins), as mel_features.spectrogram_to_mel_matrix.

    The triangles are linear in mel (not in Hz), and the DC bin gets no weight, following HTK.
    """
    bins_mel = hertz_to_mel(
        torch.linspace(0.0, config.sample_rate / 2, num_spectrogram_bins, dtype=torch.float64, device=device)
    )
    low, high = hertz_to_mel(torch.tensor([config.mel_min_hz, config.mel_max_hz], dtype=torch.float64)).tolist()
    edges_mel = torch.linspace(low, high, config.num_mel_bins + 2, dtype=torch.float64, device=device)
    lower, center, upper = edges_mel[:-2], edges_mel[1:-1], edges_mel[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights[0, :] = 0.0
    return weights


def log_mel_spectrogram(waveform: torch.Tensor, config: VGGishConfig) -> torch.Tensor:
    """Log-mel spectrogram of shape (..., num_frames, num_mel_bins) of waveforms (..., num_samples).

    As mel_features.log_mel_spectrogram: frames of 25 ms every 10 ms without padding, periodic Hann window,
    magnitude of an FFT of the next power of two (512), HTK mel filters, then log(mel + log_offset).
    """
    window_length = config.stft_window_samples
    fft_length = 2 ** math.ceil(math.log2(window_length))
    frames = waveform.to(torch.float32).unfold(-1, window_length, config.stft_hop_samples)
    window = torch.hann_window(window_length, periodic=True, dtype=torch.float32, device=waveform.device)
    magnitude = torch.fft.rfft(frames * window, n=fft_length).abs()
    mel_weights = mel_weight_matrix(config, magnitude.shape[-1], device=waveform.device).to(torch.float32)
    return torch.log(magnitude @ mel_weights + config.log_offset)


def frame_examples(log_mel: torch.Tensor, config: VGGishConfig) -> torch.Tensor:
    """Cut (..., num_frames, num_mel_bins) into examples (..., num_examples, window_frames, num_mel_bins), dropping
    a trailing partial example as vggish_input.waveform_to_examples does."""
    examples = log_mel.unfold(-2, config.example_window_frames, config.example_hop_frames)
    return examples.transpose(-1, -2)


class VGGishPostprocessor(nn.Module):
    """PCA whitening then 8-bit quantisation of the embeddings, as torchvggish's Postprocessor (the PCA parameters
    ship with the released model)."""

    def __init__(self, config: VGGishConfig):
        super().__init__()
        self.quantize_min = float(config.quantize_min)
        self.quantize_max = float(config.quantize_max)
        self.register_buffer("pca_eigen_vectors", torch.empty(config.embedding_size, config.embedding_size))
        self.register_buffer("pca_means", torch.empty(config.embedding_size, 1))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        # The port computes mm(V, (E^T - means))^T; this is the same product without the transposes.
        whitened = (embeddings - self.pca_means.T) @ self.pca_eigen_vectors.T
        clipped = whitened.clamp(self.quantize_min, self.quantize_max)
        return torch.round((clipped - self.quantize_min) * (255.0 / (self.quantize_max - self.quantize_min)))


class VGGishPreTrainedModel(PreTrainedModel):
    config: VGGishConfig
    base_model_prefix = "vggish"
    main_input_name = "input_values"
    input_modalities = ("audio",)

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, VGGishPostprocessor):
            # Identity PCA: a fresh model quantises its raw embeddings.
            init.eye_(module.pca_eigen_vectors)
            init.zeros_(module.pca_means)


class VGGishModel(VGGishPreTrainedModel):
    """VGGish: log-mel examples -> VGG conv stack (`features`) -> three fully connected layers (`embeddings`) ->
    optional PCA + quantisation (`postprocessor`)."""

    def __init__(self, config: VGGishConfig):
        super().__init__(config)
        layers = []
        in_channels = 1
        for channels, depth in zip(config.block_channels, config.block_depths):
            for _ in range(depth):
                layers += [nn.Conv2d(in_channels, channels, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_channels = channels
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)

        num_pools = len(config.block_channels)
        flat_size = in_channels * (config.example_window_frames >> num_pools) * (config.num_mel_bins >> num_pools)
        self.embeddings = nn.Sequential(
            nn.Linear(flat_size, config.embedding_hidden_size),
            nn.ReLU(inplace=True),
            nn.Linear(config.embedding_hidden_size, config.embedding_hidden_size),
            nn.ReLU(inplace=True),
            nn.Linear(config.embedding_hidden_size, config.embedding_size),
            nn.ReLU(inplace=True),
        )
        self.postprocessor = VGGishPostprocessor(config) if config.postprocess else None
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
    ) -> VGGishOutput:
        r"""
        input_values (`torch.FloatTensor` of shape `(num_samples,)` or `(batch, num_samples)`):
            Mono waveform(s) in [-1, 1] at `config.sample_rate`, at least `config.example_window_samples` long.
        input_features (`torch.FloatTensor` of shape `(..., num_examples, window_frames, num_mel_bins)`):
            Log-mel examples instead of `input_values` (torchvggish's `waveform_to_examples` gives them as
            (num_examples, 1, 96, 64): squeeze its channel axis).
        """
        if (input_values is None) == (input_features is None):
            raise ValueError("Pass exactly one of `input_values` (waveform) or `input_features` (log-mel examples).")
        if input_values is not None:
            if input_values.shape[-1] < self.config.example_window_samples:
                raise ValueError(
                    f"VGGish needs at least {self.config.example_window_samples} samples "
                    f"({self.config.example_window_samples / self.config.sample_rate:.3f} s) per waveform, got "
                    f"{input_values.shape[-1]}."
                )
            input_features = frame_examples(log_mel_spectrogram(input_values, self.config), self.config)
        if input_features.ndim < 3:
            raise ValueError(
                f"`input_features` must be (..., num_examples, frames, mel bins), got {input_features.shape}."
            )

        leading_shape = input_features.shape[:-2]
        examples = input_features.reshape(-1, 1, *input_features.shape[-2:]).to(self.dtype)
        hidden = self.features(examples)
        # torchvggish flattens in (time, frequency, channel) order, the layout of the original TensorFlow model.
        hidden = hidden.transpose(1, 3).transpose(1, 2).reshape(hidden.shape[0], -1)
        embeddings = self.embeddings(hidden)
        if self.postprocessor is not None:
            embeddings = self.postprocessor(embeddings)

        starts = torch.arange(leading_shape[-1], device=embeddings.device) * self.config.example_hop_samples
        timestamps = (starts + self.config.example_window_samples / 2) / self.config.sample_rate
        return VGGishOutput(embeddings=embeddings.reshape(*leading_shape, -1), timestamps=timestamps)


VGGishModel.register_for_auto_class("AutoModel")

__all__ = ["VGGishModel", "VGGishPreTrainedModel"]
