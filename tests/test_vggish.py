"""VGGish: the log-mel front end against an independent numpy version of vggish's mel_features.py, the converter
against a functional reference forward of the torchvggish layers, and save/load including Hub remote code."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_VGGISH
from huggingface_hub.errors import StrictDataclassClassValidationError

from modeling_abaw.configuration_vggish import VGGishConfig
from modeling_abaw.conversion import vggish
from modeling_abaw.errors import InputError
from modeling_abaw.modeling_vggish import VGGishModel, frame_examples, log_mel_spectrogram

TINY = TINY_VGGISH


def numpy_log_mel_examples(waveform: np.ndarray) -> np.ndarray:
    """The VGGish front end at its published constants, written directly in float64 numpy."""
    window, hop, fft_length = 400, 160, 512
    num_frames = 1 + (len(waveform) - window) // hop
    frames = np.stack([waveform[i * hop : i * hop + window] for i in range(num_frames)]).astype(np.float64)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)
    magnitude = np.abs(np.fft.rfft(frames * hann, fft_length))

    def mel(hz):
        return 1127.0 * np.log(1.0 + hz / 700.0)

    bins_mel = mel(np.linspace(0.0, 8000.0, magnitude.shape[1]))
    edges = np.linspace(mel(125.0), mel(7500.0), 64 + 2)
    matrix = np.zeros((magnitude.shape[1], 64))
    for band in range(64):
        lower, centre, upper = edges[band : band + 3]
        for index, value in enumerate(bins_mel):
            if index > 0 and lower < value < upper:
                matrix[index, band] = (
                    (value - lower) / (centre - lower) if value <= centre else (upper - value) / (upper - centre)
                )
    log_mel = np.log(magnitude @ matrix + 0.01)
    num_examples = 1 + (num_frames - 96) // 96
    return np.stack([log_mel[i * 96 : i * 96 + 96] for i in range(num_examples)])


def test_log_mel_matches_numpy():
    rng = np.random.default_rng(0)
    t = np.arange(40000) / 16000
    waveform = (0.3 * np.sin(2 * np.pi * 700 * t) + rng.normal(0, 0.05, t.shape)).astype(np.float32)
    expected = numpy_log_mel_examples(waveform)
    examples = frame_examples(log_mel_spectrogram(torch.from_numpy(waveform), VGGishConfig()), VGGishConfig())
    assert examples.shape == expected.shape == (2, 96, 64)
    np.testing.assert_allclose(examples.numpy(), expected, atol=2e-4)


def test_forward_shapes_timestamps_and_validation():
    torch.manual_seed(0)
    model = VGGishModel(VGGishConfig(**TINY, example_hop_seconds=0.48)).eval()
    waveform = torch.randn(2, 16000 * 2) * 0.1
    output = model(input_values=waveform)
    assert output.embeddings.shape == (2, 3, 8)
    torch.testing.assert_close(output.timestamps, torch.tensor([0.4875, 0.9675, 1.4475]))
    torch.testing.assert_close(model(input_values=waveform[1]).embeddings, output.embeddings[1])
    assert (
        (output.embeddings >= 0) & (output.embeddings <= 255) & (output.embeddings == output.embeddings.round())
    ).all()
    with pytest.raises(ValueError, match="15600 samples"):
        model(input_values=torch.zeros(15000))
    with pytest.raises(ValueError, match="exactly one"):
        model()
    with pytest.raises(StrictDataclassClassValidationError, match="block_depths"):
        VGGishConfig(block_channels=[4, 8])


def torchvggish_state_dict(seed: int, with_pca: bool) -> dict[str, torch.Tensor]:
    """Random tensors under the port's real key names: conv 0, 3, 6, 8, 11, 13 and linear 0, 2, 4."""
    generator = torch.Generator().manual_seed(seed)
    state_dict, in_channels = {}, 1
    for index, channels in zip((0, 3, 6, 8, 11, 13), (4, 8, 8, 8, 16, 16)):
        fan_in = in_channels * 9
        state_dict[f"features.{index}.weight"] = (
            torch.randn(channels, in_channels, 3, 3, generator=generator) * (2 / fan_in) ** 0.5
        )
        state_dict[f"features.{index}.bias"] = torch.randn(channels, generator=generator) * 0.1
        in_channels = channels
    for index, (fan_in, fan_out) in zip((0, 2, 4), ((16 * 4 * 6, 32), (32, 32), (32, 8))):
        state_dict[f"embeddings.{index}.weight"] = (
            torch.randn(fan_out, fan_in, generator=generator) * (2 / fan_in) ** 0.5
        )
        state_dict[f"embeddings.{index}.bias"] = torch.randn(fan_out, generator=generator) * 0.1
    if with_pca:
        state_dict["pca_eigen_vectors"] = torch.randn(8, 8, generator=generator) * 0.3
        state_dict["pca_means"] = torch.rand(8, generator=generator)  # (128,) in the release, reshaped on load
    return state_dict


def reference_forward(state_dict: dict[str, torch.Tensor], examples: torch.Tensor) -> torch.Tensor:
    """torchvggish's VGG + Postprocessor written with torch.nn.functional straight from the raw tensors."""
    x = examples[:, None]
    for index in (0, 3, 6, 8, 11, 13):
        x = F.relu(F.conv2d(x, state_dict[f"features.{index}.weight"], state_dict[f"features.{index}.bias"], padding=1))
        if index in (0, 3, 8, 13):
            x = F.max_pool2d(x, 2)
    x = x.transpose(1, 3).transpose(1, 2).contiguous().view(x.size(0), -1)
    for index in (0, 2, 4):
        x = F.relu(F.linear(x, state_dict[f"embeddings.{index}.weight"], state_dict[f"embeddings.{index}.bias"]))
    if "pca_eigen_vectors" not in state_dict:
        return x
    pca = torch.mm(state_dict["pca_eigen_vectors"], x.t() - state_dict["pca_means"].reshape(-1, 1)).t()
    return torch.round((torch.clamp(pca, -2.0, 2.0) + 2.0) * (255.0 / 4.0))


def convert(folder: Path, state_dict: dict, pca: dict | None = None) -> Path:
    """Save the port's files into `folder` and run the converter's command line on them."""
    folder.mkdir()
    torch.save(state_dict, folder / "vggish.pth")
    argv = ["--checkpoint", str(folder / "vggish.pth"), "--output", str(folder / "converted")]
    if pca is not None:
        # The PCA release holds numpy arrays; weights_only loading must still accept them.
        torch.save({key: value.numpy() for key, value in pca.items()}, folder / "pca.pth")
        argv += ["--pca-params", str(folder / "pca.pth")]
    assert vggish.main(argv) == 0
    return folder / "converted"


def test_converted_checkpoint_matches_reference(tmp_path):
    waveform = torch.from_numpy(np.random.default_rng(1).normal(0, 0.2, 16000 * 3).astype(np.float32))
    examples = frame_examples(log_mel_spectrogram(waveform, VGGishConfig()), VGGishConfig())

    raw = torchvggish_state_dict(seed=0, with_pca=False)
    model = VGGishModel.from_pretrained(convert(tmp_path / "raw", raw))
    assert model.config.block_channels == [4, 8, 8, 16] and model.config.block_depths == [1, 1, 2, 2]
    assert not model.config.postprocess and model.postprocessor is None
    expected = reference_forward(raw, examples)
    assert expected.abs().sum() > 0
    torch.testing.assert_close(model(input_values=waveform).embeddings, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model(input_features=examples).embeddings, expected, rtol=1e-4, atol=1e-5)

    full = torchvggish_state_dict(seed=1, with_pca=True)
    pca = {key: full.pop(key) for key in ("pca_eigen_vectors", "pca_means")}
    model = VGGishModel.from_pretrained(convert(tmp_path / "pca", full, pca))
    assert model.config.postprocess
    expected = reference_forward({**full, **pca}, examples)
    difference = (model(input_values=waveform).embeddings - expected).abs()
    assert expected.std() > 10  # quantised values spread over 0..255
    assert difference.max() <= 1 and (difference == 0).float().mean() > 0.95  # only float ties may round apart


def test_converter_reports_unmapped_keys(tmp_path):
    state_dict = torchvggish_state_dict(seed=0, with_pca=True)
    del state_dict["features.3.bias"]
    state_dict["classifier.weight"] = torch.zeros(3)
    torch.save(state_dict, tmp_path / "bad.pth")
    with pytest.raises(
        InputError, match=r"missing keys \['features.3.bias'\], unexpected keys \['classifier.weight'\]"
    ):
        vggish.convert(str(tmp_path / "bad.pth"), str(tmp_path / "out"))
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(InputError, match="notes.pth"):
        vggish.convert(str(tmp_path / "notes.pth"), str(tmp_path / "out"))


def test_converter_command_line_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    missing = tmp_path / "missing.pth"
    assert vggish.main(["--checkpoint", str(missing), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"convert_vggish_checkpoint: error: {missing}: no such file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_save_load_and_remote_code(tmp_path, load_with_remote_code):
    torch.manual_seed(0)
    model = VGGishModel(VGGishConfig(**TINY)).eval()
    model.save_pretrained(tmp_path / "checkpoint")
    files = set(os.listdir(tmp_path / "checkpoint"))
    assert {"config.json", "model.safetensors", "configuration_vggish.py", "modeling_vggish.py"} <= files

    reloaded = VGGishModel.from_pretrained(tmp_path / "checkpoint").eval()
    assert reloaded.config.to_diff_dict() == model.config.to_diff_dict()
    waveform = torch.sin(torch.arange(32000) * 0.05) * 0.3
    with torch.no_grad():
        expected = model(input_values=waveform).embeddings
        torch.testing.assert_close(reloaded(input_values=waveform).embeddings, expected)

    class_name, module, outputs = load_with_remote_code(tmp_path / "checkpoint", {"input_values": waveform})
    assert class_name == "VGGishModel" and not module.startswith("modeling_abaw")
    torch.testing.assert_close(outputs["embeddings"], expected)
