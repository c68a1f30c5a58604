"""Where a run's weights come from and go: the model a stage starts from (`--model`), checkpoints with exact
resumption, and the Hub-ready model folders best/ and final/.

    <output_dir>/checkpoints/step_<N>/   accelerator.save_state() + training_state.json; the last --save_total_limit
                                         are kept
    <output_dir>/best/, final/           save_pretrained() folders (config with auto_map, safetensors, modeling code,
                                         image processor for FaceMAE) with eval_results.json, training_info.json and
                                         their model card README.md (`modeling_abaw.hub.cards`)
"""

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.utils import logging as transformers_logging

from ..data.synth import is_synthaffect
from ..errors import InputError
from ..hub.cards import write_model_card
from ..io import atomic_directory, replace_directory, write_json
from . import EVAL_RESULTS_FILE, TRAINING_INFO_FILE

STATE_FILE = "training_state.json"

# What a folder may hold beside config.json and still mean "a new model of this architecture": the files
# `config.save_pretrained` writes (config.json and the configuration's remote code), an image processor, a card.
CONFIG_ONLY_FILES = ("config.json", "preprocessor_config.json", "README.md", ".gitattributes")

# ----------------------------------------------------------------------------------------------------------------------
# The model a stage starts from


def load_model(
    model_class: type[PreTrainedModel], name_or_path: str | None, verbose: bool = False, **config_overrides
) -> tuple[PreTrainedModel, str]:
    """The model to train, with `config_overrides` applied to its config, and a line saying where its weights come
    from (every key of the loading report with `verbose`):

    - `name_or_path` None: a new model with the paper's configuration;
    - a folder holding only a config (CONFIG_ONLY_FILES and remote code): a new model of that architecture;
    - a folder with safetensors weights, or a Hub id: those weights. Parameters the checkpoint lacks (the affect
      heads of a pre-trained encoder) are initialised, and weights of parts this model does not have (the MAE
      decoder) dropped; the line names both.

    Anything else is an InputError naming the checkpoint: no such folder, an unreadable config, a checkpoint of
    another model, weights only in a pickle format (never unpickled: it could run code), weights that do not fit.
    """
    name = model_class.__name__
    if name_or_path is None:
        return model_class(model_class.config_class(**config_overrides)), f"New {name} with the paper's configuration"
    path = Path(name_or_path)
    if not path.exists() and (name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1):
        raise InputError(f"{name_or_path}: no such model folder (and not a Hub id of the form org/name)")
    if path.exists() and not path.is_dir():
        raise InputError(f"{name_or_path}: not a model folder")
    config = read_config(model_class, name_or_path, config_overrides)
    if path.is_dir() and not any(path.glob("*.safetensors")):
        other_files = sorted(
            file.name for file in path.iterdir() if file.name not in CONFIG_ONLY_FILES and file.suffix != ".py"
        )
        if other_files:
            raise InputError(
                f"{path}: no *.safetensors weights (it holds {', '.join(other_files)}); save the model with "
                "save_pretrained (safetensors), or keep only config.json there to train a new model from scratch"
            )
        return model_class(config), f"New {name} of the architecture in {path / 'config.json'} (no weights there)"
    with quiet_transformers():
        try:
            model, report = model_class.from_pretrained(
                name_or_path, config=config, use_safetensors=True, output_loading_info=True
            )
        except (OSError, RuntimeError) as error:
            raise InputError(f"{name_or_path}: cannot load the {name} weights ({one_line(error)})") from None
    return model, loading_summary(model, name_or_path, report, verbose)


def read_config(model_class: type[PreTrainedModel], name_or_path: str, overrides: dict) -> PreTrainedConfig:
    """The config of checkpoint `name_or_path` as `model_class`'s config class, with `overrides` (which it
    validates). A checkpoint of a related type loads (a pre-training checkpoint into the affect model); one of
    another model does not."""
    config_class = model_class.config_class
    try:
        values, _ = config_class.get_config_dict(name_or_path)
    except OSError as error:
        raise InputError(f"{name_or_path}: cannot read its config.json ({one_line(error)})") from None
    model_type = values.get("model_type")
    found = CONFIG_MAPPING[model_type] if model_type in CONFIG_MAPPING else None
    if found is None or not (issubclass(found, config_class) or issubclass(config_class, found)):
        raise InputError(
            f"{name_or_path}: a {model_type!r} checkpoint; this stage trains {model_class.__name__} "
            f"({config_class.model_type!r})"
        )
    try:
        return config_class.from_dict({**values, **overrides})
    except (TypeError, ValueError) as error:
        raise InputError(f"{name_or_path}: invalid config.json ({one_line(error)})") from None


def loading_summary(model: nn.Module, source: str, report: dict, verbose: bool) -> str:
    """One line naming the parts of `model` newly initialised and the checkpoint's parts it dropped; with
    `verbose`, every key on a line of its own."""
    name = type(model).__name__
    model_keys = set(model.state_dict())
    missing, unexpected = set(report["missing_keys"]), set(report["unexpected_keys"])
    if model_keys <= missing:
        raise InputError(f"{source}: none of its weights belong to a {name}")
    line = f"Loaded {source} into {name}"
    if missing:
        line += "; new: " + ", ".join(module_groups(missing, model_keys - missing))
    if unexpected:
        line += "; dropped: " + ", ".join(module_groups(unexpected, model_keys)) + f" (not in {name})"
    if not verbose:
        return line + ("; --verbose lists every key" if missing or unexpected else "")
    keys = [f"new {key}" for key in sorted(missing)] + [f"dropped {key}" for key in sorted(unexpected)]
    return "\n  ".join([line, *keys])


def module_groups(keys: set[str], other_keys: set[str], detail: int = 4) -> list[str]:
    """The modules of parameter names `keys`, each subtree without any of `other_keys` written once: its root when
    it has more than `detail` modules (`decoder`), else its modules (`fc_norm`, `affect_heads.heads.{au,expr,va}`)."""

    def has_other_keys(prefix: str) -> bool:
        return any(key == prefix or key.startswith(prefix + ".") for key in other_keys)

    subtrees: dict[str, list[str]] = {}
    for module in sorted({key.rpartition(".")[0] or key for key in keys}):
        parts = module.split(".")
        prefixes = (".".join(parts[:length]) for length in range(1, len(parts) + 1))
        subtrees.setdefault(next((p for p in prefixes if not has_other_keys(p)), module), []).append(module)
    groups = []
    for root, modules in subtrees.items():
        if len(modules) == 1 or len(modules) > detail:
            groups.append(modules[0] if len(modules) == 1 else root)
            continue
        common = os.path.commonprefix([module.split(".") for module in modules])
        leaves = [".".join(module.split(".")[len(common) :]) for module in modules]
        groups.append(".".join(common) + ".{" + ",".join(leaves) + "}")
    return groups


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' logger (its loading report, config warnings) for a load `load_model` reports itself."""
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)


def one_line(error: Exception) -> str:
    return " ".join(str(error).split())


# ----------------------------------------------------------------------------------------------------------------------
# Checkpoints


@dataclass
class TrainingState:
    """Where a run stands; saved as training_state.json in every checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches of `epoch` this process has consumed
    num_processes: int = 1
    best_metric: float | None = None
    best_step: int | None = None
    history: dict = field(default_factory=lambda: {"train": [], "eval": []})


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """The complete checkpoints `<output_dir>/checkpoints/step_<N>`, oldest first."""
    folders = (Path(output_dir) / "checkpoints").glob("step_*")
    complete = [path for path in folders if path.name[5:].isdigit() and (path / STATE_FILE).is_file()]
    return sorted(complete, key=lambda path: int(path.name[5:]))


def find_checkpoint(name: str, output_dir: str) -> Path:
    """The checkpoint that --resume_from_checkpoint names: a folder, or 'latest'."""
    if name == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise InputError(f"{Path(output_dir) / 'checkpoints'}: no checkpoint to resume from")
        return found[-1]
    if not (Path(name) / STATE_FILE).is_file():
        raise InputError(f"{name}: not a checkpoint folder (no {STATE_FILE})")
    return Path(name)


def read_training_state(checkpoint: Path, num_processes: int) -> TrainingState:
    state = TrainingState(**json.loads((checkpoint / STATE_FILE).read_text()))
    if state.num_processes != num_processes:
        raise InputError(
            f"{checkpoint} was written by {state.num_processes} processes; resume it with as many "
            f"(this run has {num_processes})"
        )
    return state


def save_checkpoint(accelerator: Accelerator, output_dir: str, save_total_limit: int, state: TrainingState) -> None:
    """`accelerator.save_state` (every process writes its part) into a temporary folder that replaces
    checkpoints/step_<N> once complete, so that an interrupted save never replaces a good checkpoint; then the
    oldest beyond `save_total_limit` are deleted."""
    folder = Path(output_dir) / "checkpoints"
    temporary = folder / f".step_{state.step}.tmp"  # one name every process knows
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(temporary)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json(temporary / STATE_FILE, dataclasses.asdict(state))
        replace_directory(temporary, folder / f"step_{state.step}")
        for old in list_checkpoints(output_dir)[:-save_total_limit]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


# ----------------------------------------------------------------------------------------------------------------------
# Saved models


def save_model(accelerator: Accelerator, model: nn.Module, directory: Path, results: dict, training_info: dict) -> None:
    """`save_pretrained` (Hub-ready: config with auto_map, safetensors, modeling code, and the image processor of
    FaceMAE models) plus eval_results.json (`results`), training_info.json (`training_info`, see `training_record`)
    and the model card made from them, replacing `directory` once complete."""
    state_dict = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        with atomic_directory(directory) as temporary:
            accelerator.unwrap_model(model).save_pretrained(temporary, state_dict=state_dict)
            write_json(temporary / EVAL_RESULTS_FILE, results)
            write_json(temporary / TRAINING_INFO_FILE, training_info)
            write_model_card(temporary)
    accelerator.wait_for_everyone()


def training_record(args, run_info: dict | None = None) -> dict:
    """What a saved model records of its training (training_info.json, which its card reads): the stage, its
    arguments, the start model (`--model`; its Hub id when it is one), the data and whether it is SynthAffect, and
    the stage's `run_info` (tasks, split)."""
    arguments = dataclasses.asdict(args)
    data = arguments.get("data") or []
    data = [str(Path(path).resolve()) for path in ([data] if isinstance(data, str) else data)]
    start_model = arguments.get("model")
    # A --model that is not a folder is a Hub id: `load_model` refused anything else.
    start_model_is_folder = start_model is not None and Path(start_model).exists()
    return {
        "stage": args.stage,
        "arguments": arguments,
        "start_model": str(Path(start_model).resolve()) if start_model_is_folder else start_model,
        "start_model_hub_id": None if start_model_is_folder else start_model,
        "data": data,
        "synthaffect": bool(data) and all(map(is_synthaffect, data)),
        **(run_info or {}),
    }


def parameter_checksum(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer, to compare processes bit for bit."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
