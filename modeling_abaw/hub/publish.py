"""Publishing a model folder to the Hugging Face Hub: build the complete folder, check that it loads without this
package, then one commit.

    build_upload_folder(model_dir, out, repo_id=...)   OUT holds exactly what is uploaded:
        config.json (auto_map; a TMF's backbones rewritten to Hub ids), *.safetensors, the modeling code, the image
        processor, README.md (the model card), LICENSE.md, eval_results.json, training_info.json, history.json (from
        the folder or the run folder above it), logs/ (TensorBoard, with `logs=True`)
    check_remote_code(out)     loads it with `AutoModel.from_pretrained(out, trust_remote_code=True)` in a Python
                               where `modeling_abaw` cannot be imported (what a Hub user without the package runs)
    push_model_folder(...)     token check, create_repo(exist_ok=True) refusing a repo holding another model type,
                               one upload_folder commit (not push_to_hub, which would rewrite the card), the tag;
                               a TMF's local backbones are pushed first to repos of their own when asked

Every failure is an InputError with one line naming it (no token, token rejected, Hub unreachable, a repo of another
model type, the card rejected, the remote-code check): nothing is reported as pushed before its commit exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
from huggingface_hub import HfApi, ModelCard, ModelCardData, constants, get_token, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id

from ..configuration_tmf import VISUAL_MODALITY
from ..errors import InputError
from ..io import atomic_directory, write_json, write_text
from ..smoothing_search import SMOOTHING_SEARCH_FILES
from ..train import HISTORY_FILE
from .cards import CARD_FILE, EVAL_RESULTS_FILE, TRAINING_INFO_FILE, model_card

LICENSE_FILE = "LICENSE.md"
LOGS_FOLDER = "logs"  # the run's TensorBoard logs, beside its history.json (above best/ and final/)

# What a model folder holds beside its weights, config and code that the upload keeps; README.md and LICENSE.md are
# written anew, and files of other tools (checkpoints, optimizer state) stay local.
KEPT_FILES = (
    EVAL_RESULTS_FILE,
    TRAINING_INFO_FILE,
    HISTORY_FILE,
    "preprocessor_config.json",
    *SMOOTHING_SEARCH_FILES,  # `abaw smoothing-search`'s report of how the model's smoothing policy was chosen
)

# A Python where `import modeling_abaw` fails loads the folder with remote code and, given inputs, runs it.
REMOTE_CODE_SCRIPT = """
import sys
sys.modules["modeling_abaw"] = None  # the package is not importable here
import torch
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
print(type(model).__name__, type(model).__module__)
if len(sys.argv) > 2:
    inputs = torch.load(sys.argv[2], weights_only=True)
    with torch.no_grad():
        outputs = model(**inputs)
    torch.save({k: v for k, v in outputs.items() if isinstance(v, torch.Tensor)}, sys.argv[3])
"""


@dataclass(frozen=True)
class RemoteCodeModel:
    class_name: str
    module: str  # the transformers_modules.* module its class came from
    outputs: dict | None  # tensor outputs on the given inputs


def load_with_remote_code(model_dir: str | os.PathLike, inputs: dict | None = None, env: dict | None = None):
    """Load `model_dir` (a folder, or a Hub id with `env` naming the endpoint) with `trust_remote_code=True` in a
    Python where `modeling_abaw` is not importable and, given `inputs`, run it; InputError with the loader's last
    error line when it fails."""
    import torch

    with tempfile.TemporaryDirectory(prefix="remote-code-") as work:
        work = Path(work)
        (work / "load.py").write_text(REMOTE_CODE_SCRIPT)
        # A folder as an absolute path: the loader runs elsewhere, and a relative one would read as a Hub id.
        reference = os.fspath(Path(model_dir).resolve()) if Path(model_dir).exists() else os.fspath(model_dir)
        arguments = [sys.executable, "load.py", reference]
        if inputs is not None:
            torch.save(inputs, work / "inputs.pt")
            arguments += ["inputs.pt", "outputs.pt"]
        child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HF_HUB_OFFLINE": "1"}
        child_env.update({"HF_MODULES_CACHE": str(work / "modules"), **(env or {})})
        result = subprocess.run(arguments, cwd=work, env=child_env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            raise InputError(
                f"{model_dir}: does not load with trust_remote_code=True without modeling_abaw installed "
                f"({lines[-1].strip() if lines else f'exit code {result.returncode}'})"
            )
        class_name, module = result.stdout.split()[-2:]
        outputs = torch.load(work / "outputs.pt", weights_only=True) if inputs is not None else None
    return RemoteCodeModel(class_name, module, outputs)


def check_remote_code(folder: str | os.PathLike) -> str:
    """The class a Hub user without this package gets from `folder` (InputError when it does not load)."""
    return load_with_remote_code(folder).class_name


# ----------------------------------------------------------------------------------------------------------------------
# The folder


def read_config(model_dir: Path) -> dict:
    path = model_dir / "config.json"
    if not path.is_file():
        raise InputError(f"{model_dir}: not a model folder (no config.json)")
    return json.loads(path.read_text())


def is_local_reference(model: str) -> bool:
    """A backbone spec's model is a folder (canonical references are absolute paths), not a Hub id."""
    if Path(model).is_dir() or Path(model).is_absolute():
        return True
    try:
        validate_repo_id(model)
    except HFValidationError:
        return True
    return False


def local_backbones(config: dict) -> dict[str, str]:
    """The backbones (modality -> folder) a TMF config names by local path; empty for a model without backbones."""
    specs = config.get("backbones") or {}
    return {
        name: spec["model"] for name, spec in specs.items() if spec.get("model") and is_local_reference(spec["model"])
    }


def hub_backbones(config: dict, backbone_ids: dict[str, str]) -> dict:
    """`config.backbones` with every local model replaced by its Hub id from `backbone_ids`; InputError naming the
    backbones that have none."""
    missing = sorted(set(local_backbones(config)) - set(backbone_ids))
    if missing:
        listed = ", ".join(f"{name}={local_backbones(config)[name]}" for name in missing)
        raise InputError(
            f"the TMF model names local backbones ({listed}); give their Hub ids (--backbone NAME=ORG/ID) or push "
            "them first (--push-backbones ORG/PREFIX)"
        )
    unknown = sorted(set(backbone_ids) - set(config.get("backbones") or {}))
    if unknown:
        raise InputError(f"--backbone {', '.join(unknown)}: the model has no such backbone")
    for name, hub_id in backbone_ids.items():
        try:
            validate_repo_id(hub_id)
        except HFValidationError:
            raise InputError(f"--backbone {name}={hub_id}: not a Hub repo id (org/name)") from None
    return {
        name: {**spec, **({"model": backbone_ids[name]} if name in backbone_ids else {})}
        for name, spec in config["backbones"].items()
    }


def run_folder_file(model_dir: Path, name: str) -> Path | None:
    """`name` in the model folder, else in the run folder above it (where training writes history.json, logs/)."""
    for folder in (model_dir, model_dir.parent):
        if (folder / name).exists():
            return folder / name
    return None


def licence_text(card: ModelCard) -> str:
    """LICENSE.md: the card's licence, and the terms a user accepts (the gate's prompt) when there are any."""
    data = card.data
    name = data.license_name or data.license
    lines = [f"# Licence: {name}", ""]
    if data.license_link:
        lines += [f"The terms: {data.license_link}", ""]
    elif data.license != "other":
        lines += [f"The model weights are released under the `{data.license}` licence (SPDX id as on the Hub).", ""]
    prompt = data.to_dict().get("extra_gated_prompt")
    if prompt:
        lines += [prompt.strip(), ""]
    return "\n".join(lines)


def backbone_card(model_dir: Path, repo_id: str, used_by: str) -> ModelCard:
    """The short card of a backbone without training results of this package (an audio model, a converted
    checkpoint): what it is and which model uses it."""
    config = read_config(model_dir)
    architecture = (config.get("architectures") or [config.get("model_type", "model")])[0]
    data = ModelCardData(
        library_name="transformers",
        tags=["abaw", "facial-affect", "backbone"],
        license="other",
        license_name="same-as-source",
    )
    return ModelCard.from_template(
        data,
        model_id=repo_id,
        model_summary=f"The {architecture} feature backbone of the TMF model `{used_by}` (modeling-abaw), uploaded "
        "so that the TMF model resolves every part from the Hub. Its terms are those of the checkpoint it was made "
        "from.",
    )


def build_upload_folder(
    model_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    repo_id: str,
    backbone_ids: dict[str, str] | None = None,
    license: str | None = None,
    logs: bool = False,
    card: Callable[[Path], ModelCard] | None = None,
) -> Path:
    """Write into `out` (replaced once complete) exactly what `model_dir` uploads as `repo_id` (module docstring),
    and check that it loads with remote code. `card(folder)` makes a card other than `model_card(folder)`."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    if not any(model_dir.glob("*.safetensors")):
        raise InputError(f"{model_dir}: no *.safetensors weights (save the model with save_pretrained)")
    with atomic_directory(out) as folder:
        for file in sorted(model_dir.iterdir()):
            if file.is_file() and (file.suffix in (".safetensors", ".py") or file.name in ("config.json", *KEPT_FILES)):
                shutil.copy2(file, folder / file.name)
        backbones = hub_backbones(config, backbone_ids or {}) if config.get("backbones") else {}
        if backbones:
            write_json(folder / "config.json", {**config, "backbones": backbones}, sort_keys=True)
        history = run_folder_file(model_dir, HISTORY_FILE)
        if history is not None and not (folder / HISTORY_FILE).exists():
            shutil.copy2(history, folder / HISTORY_FILE)
        if logs:
            tensorboard = run_folder_file(model_dir, LOGS_FOLDER)
            if tensorboard is None:
                raise InputError(f"--logs: no {LOGS_FOLDER}/ in {model_dir} or {model_dir.parent}")
            shutil.copytree(tensorboard, folder / LOGS_FOLDER)
        base_model = backbones.get(VISUAL_MODALITY, {}).get("model")  # a TMF is built on its visual backbone
        if card is None:
            model_card_ = model_card(folder, repo_id=repo_id, base_model=base_model, license=license)
        else:
            model_card_ = card(folder)
        write_text(folder / CARD_FILE, str(model_card_))
        write_text(folder / LICENSE_FILE, licence_text(model_card_))
        check_remote_code(folder)
    return Path(out)


# ----------------------------------------------------------------------------------------------------------------------
# The push


def one_line(error: Exception) -> str:
    return " ".join(str(error).split())


@contextmanager
def hub_errors(what: str) -> Iterator[None]:
    """Hub and transport failures of `what` as one-line InputErrors."""
    try:
        yield
    except httpx2.TransportError as error:
        raise InputError(
            f"{what}: cannot reach the Hugging Face Hub at {constants.ENDPOINT} ({one_line(error)})"
        ) from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status == 401:
            raise InputError(f"{what}: the Hub at {constants.ENDPOINT} rejected the token (401)") from None
        raise InputError(f"{what}: {one_line(error)}") from None
    except ValueError as error:  # upload_folder's check of the card: "Invalid metadata in README.md"
        raise InputError(f"{what}: {one_line(error)}") from None


def check_repo_id(flag: str, value: str) -> None:
    """InputError naming `flag` when `value` is not a Hub repo id."""
    try:
        validate_repo_id(value)
    except HFValidationError:
        raise InputError(f"{flag} {value}: not a Hub repo id (org/name)") from None


def check_token(api: HfApi) -> str:
    """The user the token belongs to; InputError without a token or when the Hub rejects it."""
    if get_token() is None:
        raise InputError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    with hub_errors("token check"):
        return api.whoami()["name"]


def check_repo_model_type(api: HfApi, repo_id: str, model_type: str, revision: str | None) -> None:
    """Refuse a repo whose config.json is of another model type (an empty repo is fine)."""
    with hub_errors(f"reading {repo_id}"):
        try:
            path = hf_hub_download(repo_id, "config.json", revision=revision)
        except EntryNotFoundError:
            return
    found = json.loads(Path(path).read_text()).get("model_type")
    if found != model_type:
        raise InputError(
            f"{repo_id} already holds a {found!r} model; this is a {model_type!r} model (use another repo)"
        )


@dataclass(frozen=True)
class PushedRepo:
    repo_id: str
    commit: str
    url: str


def upload(
    api: HfApi,
    folder: Path,
    repo_id: str,
    *,
    commit_message: str,
    repo_type: str = "model",
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    tag: str | None = None,
    check_repo: Callable[[HfApi, str], None] | None = None,
) -> PushedRepo:
    """create_repo(exist_ok=True), `check_repo(api, repo_id)` on what it holds, ONE upload_folder commit of `folder`
    (not `push_to_hub`, which would rewrite the card), then the tag."""
    with hub_errors(f"creating {repo_id}"):
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    if check_repo is not None:
        check_repo(api, repo_id)
    if revision is not None and not create_pr:
        with hub_errors(f"creating branch {revision} of {repo_id}"):
            api.create_branch(repo_id, repo_type=repo_type, branch=revision, exist_ok=True)
    with hub_errors(f"uploading {folder} to {repo_id}"):
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type=repo_type,
            folder_path=folder,
            revision=revision,
            create_pr=create_pr,
            commit_message=commit_message,
        )
    if tag is not None:
        with hub_errors(f"tagging {repo_id} {tag}"):
            api.create_tag(repo_id, repo_type=repo_type, tag=tag, revision=commit.oid)
    return PushedRepo(repo_id, commit.oid, commit.pr_url or commit.commit_url)


def upload_model(api: HfApi, folder: Path, repo_id: str, **options) -> PushedRepo:
    """`upload` of a model folder, refusing a repo that holds another model type."""
    model_type = read_config(folder).get("model_type")
    return upload(
        api,
        folder,
        repo_id,
        commit_message=f"Upload {model_type} model (modeling-abaw)",
        check_repo=lambda api, repo_id: check_repo_model_type(api, repo_id, model_type, None),
        **options,
    )


def push_model_folder(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    tag: str | None = None,
    backbone_ids: dict[str, str] | None = None,
    push_backbones: str | None = None,
    license: str | None = None,
    logs: bool = False,
    dry_run: str | os.PathLike | None = None,
    report: Callable[[str], None] = print,
) -> list[PushedRepo]:
    """Push `model_dir` as `repo_id` (module docstring). With `dry_run`, only build the folder there. With
    `push_backbones` (ORG/PREFIX), each local backbone of a TMF goes first to ORG/PREFIX-<name> (main branch: the
    TMF's config names it without a revision). Returns what was pushed, backbones first; `report` gets one line
    for each commit once it exists."""
    model_dir = Path(model_dir)
    check_repo_id("--repo-id", repo_id)
    if push_backbones is not None:
        check_repo_id("--push-backbones", push_backbones)
    backbone_ids = dict(backbone_ids or {})
    to_push = {name: path for name, path in local_backbones(read_config(model_dir)).items() if name not in backbone_ids}
    if push_backbones:
        backbone_ids.update({name: f"{push_backbones}-{name}" for name in to_push})
    if dry_run is not None:
        build_upload_folder(model_dir, dry_run, repo_id=repo_id, backbone_ids=backbone_ids, license=license, logs=logs)
        report(f"{dry_run}: the folder that would be uploaded to {repo_id} (dry run, nothing pushed)")
        return []
    api = HfApi()
    check_token(api)
    pushed = []
    with tempfile.TemporaryDirectory(prefix="push-") as work:
        # Build and check everything before the first commit: a folder that does not load is never pushed.
        folder = build_upload_folder(
            model_dir, Path(work) / "model", repo_id=repo_id, backbone_ids=backbone_ids, license=license, logs=logs
        )
        backbone_folders = {}
        if push_backbones:
            for name, path in to_push.items():
                card = backbone_card_maker(backbone_ids[name], used_by=repo_id)
                backbone_folders[name] = build_upload_folder(
                    path, Path(work) / name, repo_id=backbone_ids[name], card=card
                )
        for name, backbone_folder in backbone_folders.items():
            result = upload_model(api, backbone_folder, backbone_ids[name], private=private, tag=tag)
            report(f"pushed backbone {name}: {result.url}")
            pushed.append(result)
        result = upload_model(api, folder, repo_id, private=private, revision=revision, create_pr=create_pr, tag=tag)
        report(f"pushed {model_dir} to {result.url}" + (f" (tag {tag})" if tag else ""))
        pushed.append(result)
    return pushed


def backbone_card_maker(repo_id: str, used_by: str) -> Callable[[Path], ModelCard]:
    """A backbone folder's card: the full card of a trained stage of this package (it has eval_results.json), else
    the short `backbone_card`."""

    def card(folder: Path) -> ModelCard:
        if (folder / EVAL_RESULTS_FILE).is_file():
            return model_card(folder, repo_id=repo_id)
        return backbone_card(folder, repo_id, used_by)

    return card
