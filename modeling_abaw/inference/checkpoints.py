"""Model references and loading: what a "model" argument names, how it is recorded, and how it is loaded.

A model is named by a local folder or a Hugging Face Hub repo id. `model_reference` makes the canonical form that
configs and feature caches record (`TMFConfig.backbones`, `features.json`): a folder as an absolute path, so a
checkpoint that names it works from any working directory; a Hub id as it is. A name that is neither an existing
folder nor a valid repo id is refused before any network call.

Loading from the Hub when it cannot be reached would make huggingface_hub retry for half a minute; when
`HF_HUB_OFFLINE` is set, or one quick request shows the Hub is unreachable, Hub ids are loaded from the local cache
only (`local_files_only=True`), which fails at once when they are not there.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
from huggingface_hub import constants
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import get_session, validate_repo_id
from transformers import AutoModel

from ..audio import AudioFeatureExtractor, load_audio_extractor
from ..errors import InputError
from ..progress import no_library_bars_off_terminal

# Seconds the reachability check waits for the Hub: an unreachable host usually fails at once (no DNS, refused).
HUB_PROBE_TIMEOUT = 5.0


def model_reference(name: str | os.PathLike, what: str = "model") -> str:
    """The canonical reference of a model: an existing folder as an absolute path (a relative one is taken from the
    working directory), a Hub repo id as it is. Raise InputError for anything else, naming `what`."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    try:
        validate_repo_id(os.fspath(name))
    except HFValidationError:
        raise InputError(f"{what} {os.fspath(name)!r}: no such folder, and not a Hugging Face Hub repo id") from None
    return os.fspath(name)


@functools.cache
def hub_is_offline() -> bool:
    """`HF_HUB_OFFLINE` is set, or the Hub does not answer one request (checked once per process)."""
    if constants.HF_HUB_OFFLINE:
        return True
    try:
        get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT)
    except Exception:  # any transport failure (no DNS, connection refused, timeout, TLS) means unreachable
        return True
    return False


def hub_options(reference: str | None) -> dict:
    """`from_pretrained` options for a canonical reference: Hub ids from the local cache only when offline."""
    if reference is None or Path(reference).is_dir():
        return {}
    return {"local_files_only": hub_is_offline()}


def load_checkpoint(name: str | os.PathLike, expected: tuple[type, ...], what: str = "model"):
    """A checkpoint (folder or Hub id) through `AutoModel`, in float32 whatever dtype it was saved in, checked to be
    of `expected`; every failure is an InputError naming `what` and the checkpoint."""
    reference = model_reference(name, what)
    options = hub_options(reference)
    no_library_bars_off_terminal()
    try:
        model = AutoModel.from_pretrained(reference, dtype=torch.float32, **options)
    except (OSError, ValueError, KeyError) as error:  # missing files, corrupt config.json, unknown model type
        if options.get("local_files_only"):
            raise InputError(
                f"{what} {os.fspath(name)!r}: not a folder, and not in the local Hugging Face cache while the Hub is "
                "offline (HF_HUB_OFFLINE=1, or no network)"
            ) from error
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{what} {os.fspath(name)!r}: cannot load it ({reason})") from error
    if not isinstance(model, expected):
        names = " or ".join(cls.__name__ for cls in expected)
        raise InputError(f"{what} {os.fspath(name)!r} is a {type(model).__name__}; a {names} checkpoint is needed")
    return model


def load_audio_backbone(
    name: str, model: str | os.PathLike | None, *, device="cpu", dtype=torch.float32, **options
) -> AudioFeatureExtractor:
    """The audio extractor of a backbone spec (`load_audio_backbone(name, **spec)`), its model taken as
    `model_reference` takes it (None for weightless features) and loaded as `load_checkpoint` loads models."""
    reference = None if model is None else model_reference(model, f"{name} backbone")
    return load_audio_extractor(name, reference, device=device, dtype=dtype, **hub_options(reference), **options)
