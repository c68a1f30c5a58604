"""Convert the PyTorch VGGish release (harritaylor/torchvggish) to a transformers checkpoint.

    python hub_scripts/convert_vggish_checkpoint.py --checkpoint vggish-10086976.pth \\
        --pca-params vggish_pca_params-970ea276.pth --output vggish

The port's state dict has `features.N.*` (VGG conv stack), `embeddings.N.*` (fully connected layers) and, in the
same file or in the separate PCA release, `pca_eigen_vectors` (128, 128) and `pca_means` (128,) or (128, 1)
(also accepted with the `pproc.` prefix of torchvggish's `VGGish` module). The layer sizes are read from the
tensors, every key must be used and every model key filled, and the result is saved with `save_pretrained`
(safetensors, plus the remote code so `AutoModel.from_pretrained(..., trust_remote_code=True)` works) into a folder
that replaces the output once complete.
"""

import argparse
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import torch

from ..configuration_vggish import VGGishConfig
from ..errors import InputError
from ..io import atomic_directory
from ..modeling_vggish import VGGishModel

PROG = "convert_vggish_checkpoint"

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

# The PCA release stores numpy arrays; allowing numpy's array constructors keeps `weights_only` loading safe. The
# pickle names the module as numpy 1 did or as numpy 2 does depending on who wrote it.
NUMPY_ARRAY_GLOBALS = [
    (_reconstruct, "numpy.core.multiarray._reconstruct"),
    (_reconstruct, "numpy._core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    type(np.dtype(np.float32)),
    type(np.dtype(np.float64)),
]
CONV_KEY = re.compile(r"features\.(\d+)\.weight")


def load_state_dict(path: str) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file" if not Path(path).exists() else f"{path}: not a file")
    try:
        with torch.serialization.safe_globals(NUMPY_ARRAY_GLOBALS):
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise InputError(f"{path}: cannot load a state dict with weights_only=True ({error})") from error
    if not isinstance(state_dict, dict):
        raise InputError(f"{path}: expected a state dict, found a {type(state_dict).__name__}.")
    return {key: torch.as_tensor(value, dtype=torch.float32) for key, value in state_dict.items()}


def config_from_state_dict(state_dict: dict[str, torch.Tensor]) -> VGGishConfig:
    """Read the VGG layout from the tensors: in the port's nn.Sequential a conv is followed by its ReLU, and a
    block by its max-pool, so consecutive convs are 2 indices apart inside a block and 3 across blocks."""
    conv_indices = sorted(int(match[1]) for key in state_dict if (match := CONV_KEY.fullmatch(key)))
    if not conv_indices or not {"embeddings.0.weight", "embeddings.4.weight"} <= set(state_dict):
        raise InputError(
            "The checkpoint lacks `features.N.weight` or `embeddings.{0,4}.weight`: not a VGGish state dict."
        )
    block_channels, block_depths = [], []
    for previous, index in zip([None] + conv_indices, conv_indices):
        if previous is None or index - previous == 3:
            block_channels.append(0)
            block_depths.append(0)
        block_channels[-1] = state_dict[f"features.{index}.weight"].shape[0]
        block_depths[-1] += 1
    return VGGishConfig(
        block_channels=block_channels,
        block_depths=block_depths,
        embedding_hidden_size=state_dict["embeddings.0.weight"].shape[0],
        embedding_size=state_dict["embeddings.4.weight"].shape[0],
        postprocess=any(key.endswith("pca_eigen_vectors") for key in state_dict),
    )


def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the port's keys to VGGishModel's (the layers keep their names; PCA moves under `postprocessor`)."""
    converted = {}
    for key, value in state_dict.items():
        name = key.removeprefix("pproc.")
        if name in ("pca_eigen_vectors", "pca_means"):
            converted[f"postprocessor.{name}"] = value.reshape(value.shape[0], -1)
        else:
            converted[key] = value
    return converted


def convert(checkpoint: str, output: str, pca_params: str | None = None) -> VGGishModel:
    state_dict = load_state_dict(checkpoint)
    if pca_params is not None:
        state_dict.update(load_state_dict(pca_params))
    config = config_from_state_dict(state_dict)
    model = VGGishModel(config)
    converted = convert_state_dict(state_dict)

    expected = model.state_dict()
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    if missing or unexpected:
        raise InputError(
            f"{checkpoint}: cannot map the state dict; missing keys {missing}, unexpected keys {unexpected}."
        )
    mismatched = [
        f"{key} {tuple(value.shape)} vs {tuple(expected[key].shape)}"
        for key, value in converted.items()
        if value.shape != expected[key].shape
    ]
    if mismatched:
        raise InputError(f"{checkpoint}: shapes do not match a VGGish model ({'; '.join(mismatched)}).")
    model.load_state_dict(converted, strict=True)

    with atomic_directory(output) as staging:
        model.save_pretrained(staging)
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="torchvggish state dict (.pth), e.g. vggish-10086976.pth")
    parser.add_argument("--pca-params", help="separate PCA release, e.g. vggish_pca_params-970ea276.pth")
    parser.add_argument("--output", required=True, help="folder to write the transformers checkpoint to")
    args = parser.parse_args(argv)
    try:
        convert(args.checkpoint, args.output, args.pca_params)
    except InputError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    print(f"Saved VGGish to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
