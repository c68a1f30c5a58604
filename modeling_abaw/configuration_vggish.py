"""VGGish configuration.

Hub remote-code file: it imports only the standard library, huggingface_hub and transformers, so a checkpoint
saved with `save_pretrained` loads with `trust_remote_code=True` where modeling_abaw is not installed.
"""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class VGGishConfig(PreTrainedConfig):
    r"""
    Configuration of [`VGGishModel`], the AudioSet VGGish embedding network (Hershey et al. 2017) as ported to
    PyTorch by harritaylor/torchvggish. The defaults reproduce the released model: 16 kHz audio, 64-band log-mel
    examples of 0.96 s, a VGG stack of 64, 128, 256x2, 512x2 channels and 128-d embeddings followed by PCA
    whitening and 8-bit quantisation.

    Args:
        sample_rate (`int`, defaults to 16000): sampling rate (Hz) the front end expects.
        stft_window_seconds (`float`, defaults to 0.025): STFT window length (400 samples at 16 kHz).
        stft_hop_seconds (`float`, defaults to 0.010): STFT hop (160 samples at 16 kHz), i.e. 100 log-mel frames/s.
        num_mel_bins (`int`, defaults to 64): number of mel bands.
        mel_min_hz (`float`, defaults to 125.0): lower edge of the lowest mel band.
        mel_max_hz (`float`, defaults to 7500.0): upper edge of the highest mel band.
        log_offset (`float`, defaults to 0.01): added to the mel energies before the log, to avoid log(0).
        example_window_seconds (`float`, defaults to 0.96): length of one example (96 log-mel frames).
        example_hop_seconds (`float`, defaults to 0.96): hop between examples; smaller values give denser features.
        block_channels (`list[int]`, defaults to `(64, 128, 256, 512)`): output channels of each VGG block.
        block_depths (`list[int]`, defaults to `(1, 1, 2, 2)`): 3x3 convolutions per block; every block ends
            with a 2x2 max-pool.
        embedding_hidden_size (`int`, defaults to 4096): width of the two hidden fully connected layers.
        embedding_size (`int`, defaults to 128): size of the output embedding.
        postprocess (`bool`, defaults to `True`): apply the released PCA whitening and 8-bit quantisation, so the
            embeddings are integers in [0, 255] stored as floats, as the original VGGish and torchvggish return.
        quantize_min (`float`, defaults to -2.0): PCA output clipped from below at this value before quantising.
        quantize_max (`float`, defaults to 2.0): PCA output clipped from above at this value before quantising.
        initializer_range (`float`, defaults to 0.02): std of the normal initialisation of fresh weights.

    Example:

    ```python
    >>> from modeling_abaw.configuration_vggish import VGGishConfig
    >>> from modeling_abaw.modeling_vggish import VGGishModel
    >>> tiny = VGGishModel(VGGishConfig(block_channels=[4, 8, 8, 16], embedding_hidden_size=32, embedding_size=8))
    ```
    """

    model_type = "vggish"

    sample_rate: int = 16000
    stft_window_seconds: float = 0.025
    stft_hop_seconds: float = 0.010
    num_mel_bins: int = 64
    mel_min_hz: float | int = 125.0
    mel_max_hz: float | int = 7500.0
    log_offset: float = 0.01
    example_window_seconds: float = 0.96
    example_hop_seconds: float = 0.96
    block_channels: list[int] | tuple[int, ...] = (64, 128, 256, 512)
    block_depths: list[int] | tuple[int, ...] = (1, 1, 2, 2)
    embedding_hidden_size: int = 4096
    embedding_size: int = 128
    postprocess: bool = True
    quantize_min: float | int = -2.0
    quantize_max: float | int = 2.0
    initializer_range: float = 0.02

    def validate_architecture(self):
        """Part of `@strict` validation: the layout must be buildable and the examples must survive the pooling."""
        if len(self.block_channels) != len(self.block_depths) or not self.block_channels:
            raise ValueError(
                f"`block_channels` {list(self.block_channels)} and `block_depths` {list(self.block_depths)} must be "
                "non-empty and of the same length (one entry per VGG block)."
            )
        if min(self.num_mel_bins, self.example_window_frames) >> len(self.block_channels) < 1:
            raise ValueError(
                f"An example of {self.example_window_frames}x{self.num_mel_bins} log-mel values is too small for "
                f"{len(self.block_channels)} 2x2 max-pools."
            )
        if not 0 <= self.mel_min_hz < self.mel_max_hz <= self.sample_rate / 2:
            raise ValueError(
                f"Mel bands must satisfy 0 <= mel_min_hz ({self.mel_min_hz}) < mel_max_hz ({self.mel_max_hz}) <= "
                f"the Nyquist frequency ({self.sample_rate / 2})."
            )
        if self.example_hop_frames < 1:
            raise ValueError(f"`example_hop_seconds`={self.example_hop_seconds} is shorter than one STFT hop.")
        if not self.quantize_min < self.quantize_max:
            raise ValueError(
                f"`quantize_min` ({self.quantize_min}) must be below `quantize_max` ({self.quantize_max})."
            )

    # Derived sizes, in samples and log-mel frames, rounded as vggish's mel_features.py and vggish_input.py do.
    @property
    def stft_window_samples(self) -> int:
        return round(self.sample_rate * self.stft_window_seconds)

    @property
    def stft_hop_samples(self) -> int:
        return round(self.sample_rate * self.stft_hop_seconds)

    @property
    def example_window_frames(self) -> int:
        return round(self.example_window_seconds / self.stft_hop_seconds)

    @property
    def example_hop_frames(self) -> int:
        return round(self.example_hop_seconds / self.stft_hop_seconds)

    @property
    def example_window_samples(self) -> int:
        """Samples one example depends on: its first STFT window start to its last STFT window end."""
        return (self.example_window_frames - 1) * self.stft_hop_samples + self.stft_window_samples

    @property
    def example_hop_samples(self) -> int:
        return self.example_hop_frames * self.stft_hop_samples


VGGishConfig.register_for_auto_class()

__all__ = ["VGGishConfig"]
