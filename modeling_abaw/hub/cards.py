"""Model cards: the README.md of a saved model folder, made from the folder alone.

A model folder (a training stage's best/ or final/, a pushed repo) holds everything its card says:

    config.json          the architecture, sizes, tasks and labels, loss weights, TMF modalities and backbones
    *.safetensors        the parameter count
    eval_results.json    the validation metrics of the saved weights (raw and `smoothed/`), the step and epoch
    training_info.json   the stage, its arguments, the start model, the data (Aff-Wild2 or SynthAffect), the split

The card is huggingface_hub's `ModelCard` rendered from `model_cards/model_card.md` with a `ModelCardData`:
library, pipeline tag, tags, base model, datasets, licence (and the gate of a model trained on Aff-Wild2), and a
model-index of `EvalResult`s, one result per ABAW task of the validation split, its challenge metric first, the
per-class values after, raw and smoothed under different names.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from safetensors import safe_open
from transformers import AutoConfig, PreTrainedConfig

from ..errors import InputError
from ..io import write_text
from ..tasks import TASKS
from ..train import EVAL_RESULTS_FILE, OFFICIAL_SPLIT, STAGES, TRAINING_INFO_FILE

CARD_FILE = "README.md"
TEMPLATE_FILE = "model_card.md"
# The metric keys of eval_results.json after the smoothing policy carry this prefix (`evaluation.score_predictions`).
SMOOTHED_PREFIX = "smoothed/"

PAPER_URL = "https://arxiv.org/abs/2303.10849"


@dataclass(frozen=True)
class ModelKind:
    """What a card says of one architecture: the stage that trains it, the Hub task and the tags that fit it."""

    stage: str
    pipeline_tag: str
    tags: tuple[str, ...]
    default_name: str  # the model-index name when no repo id is given
    predicts_affect: bool  # an ABAW model (tasks, labels, AffectPipeline) rather than a pre-trained encoder


MODEL_KINDS = {
    # Pre-training learns a face encoder: what it offers is the encoder's features (and the start of fine-tuning);
    # the Hub has no masked-image-modelling task, and image-feature-extraction is what its encoder serves.
    "FaceMAEForPreTraining": ModelKind(
        "pretrain",
        "image-feature-extraction",
        ("masked-autoencoder", "vit-mae", "self-supervised"),
        "face-mae-pretraining",
        predicts_affect=False,
    ),
    # One aligned face crop in, AU / expression logits (and valence/arousal) out: image classification is the Hub
    # task of that input and of its id2label outputs (AU multi-label, expression multi-class).
    "FaceMAEForAffect": ModelKind(
        "finetune",
        "image-classification",
        ("masked-autoencoder", "vit-mae", "frame-wise"),
        "face-mae-affect",
        predicts_affect=True,
    ),
    # Clips of a video (its frames' visual features and the aligned audio) in, one prediction per frame out.
    "TMFForAffect": ModelKind(
        "tmf",
        "video-classification",
        ("multi-modal", "audio-visual", "temporal-fusion"),
        "tmf-affect",
        predicts_affect=True,
    ),
}

# Every card's tags; each kind adds its own.
COMMON_TAGS = (
    "action-units",
    "facial-expression-recognition",
    "valence-arousal",
    "abaw",
    "facial-affect",
    "masked-autoencoder",
)


@dataclass(frozen=True)
class TaskText:
    """How a card names an ABAW task and its challenge metric (`metric_type`: an id of the Hub's metrics)."""

    title: str
    metric_name: str
    metric_type: str
    class_metric: str  # the per-class value's name after the label: "AU12 F1", "valence CCC"
    output: str  # what the model outputs for the task, and how to read it


# TODO(core): these names belong in tasks.py (`AffectTask.title`, `.metric_name`); requested, local until then.
TASK_TEXTS = {
    "au": TaskText(
        "Action unit detection", "AU mean F1", "f1", "F1", "logits; sigmoid: probabilities, present at 0.5 and above"
    ),
    "expr": TaskText(
        "Expression recognition", "EXPR macro F1", "f1", "F1", "logits; softmax over the classes, the answer its argmax"
    ),
    "va": TaskText("Valence-arousal estimation", "VA mean CCC", "ccc", "CCC", "values in [-1, 1]"),
}


@dataclass(frozen=True)
class DataTerms:
    """The licence a model inherits from its training data, and the gate of its repo (None: not gated)."""

    dataset: str  # the card's `datasets` entry and the model-index dataset type
    dataset_name: str
    license: str
    license_name: str | None = None
    license_link: str | None = None
    gated_prompt: str | None = None
    gated_fields: dict | None = None
    notice: str = ""


AFF_WILD2_EULA = "https://ibug.doc.ic.ac.uk/resources/aff-wild2/"
AFF_WILD2 = DataTerms(
    dataset="aff-wild2",
    dataset_name="Aff-Wild2",
    # Aff-Wild2 is released under an End User Licence Agreement for non-commercial academic research: a model
    # trained on it inherits those terms, which no SPDX id names.
    license="other",
    license_name="aff-wild2-eula",
    license_link=AFF_WILD2_EULA,
    gated_prompt=(
        "This model was trained on Aff-Wild2, which is licensed for non-commercial academic research only under its "
        f"End User Licence Agreement ({AFF_WILD2_EULA}). The model inherits those terms: confirm that you accept "
        "them to access it."
    ),
    gated_fields={
        "Name": "text",
        "Affiliation": "text",
        "I will use this model for non-commercial academic research only, under the Aff-Wild2 EULA": "checkbox",
    },
    notice=(
        "Trained on Aff-Wild2, which is licensed for non-commercial academic research only "
        f"([Aff-Wild2 EULA]({AFF_WILD2_EULA})). The model inherits these terms: no commercial use, and access is "
        "gated to users who accept them."
    ),
)
SYNTHAFFECT = DataTerms(
    dataset="synthaffect",
    dataset_name="SynthAffect",
    license="apache-2.0",
    notice=(
        "**A sanity model.** It was trained on SynthAffect, procedurally drawn faces generated by modeling-abaw to "
        "check that the training and inference code runs end to end. Its predictions on real faces mean nothing: do "
        "not use it to analyse people."
    ),
)


@dataclass
class ModelFolder:
    """What a model folder holds, read once."""

    path: Path
    config: PreTrainedConfig
    architecture: str  # the model class, a key of MODEL_KINDS
    kind: ModelKind
    eval_results: dict
    training_info: dict
    num_parameters: int

    @property
    def terms(self) -> DataTerms:
        # Without a record of the data (a folder saved before training_info.json existed) the restrictive terms hold.
        return SYNTHAFFECT if self.training_info.get("synthaffect") else AFF_WILD2

    @property
    def arguments(self) -> dict:
        return self.training_info.get("arguments", {})


def read_model_folder(model_dir: str | os.PathLike) -> ModelFolder:
    """The folder's config, eval results, training record and parameter count; InputError for anything else than a
    model folder of this package with its eval_results.json."""
    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a model folder (no config.json)")
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"{path}: cannot read its config.json ({' '.join(str(error).split())})") from None
    architecture = (config.architectures or [None])[0]
    if architecture not in MODEL_KINDS:
        raise InputError(
            f"{path}: a {architecture or config.model_type} model; cards describe {', '.join(MODEL_KINDS)}"
        )
    if not (path / EVAL_RESULTS_FILE).is_file():
        raise InputError(f"{path}: no {EVAL_RESULTS_FILE} (a card reports the validation results of a training stage)")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise InputError(f"{path}: no *.safetensors weights")
    return ModelFolder(
        path=path,
        config=config,
        architecture=architecture,
        kind=MODEL_KINDS[architecture],
        eval_results=read_json(path / EVAL_RESULTS_FILE),
        training_info=read_json(path / TRAINING_INFO_FILE) if (path / TRAINING_INFO_FILE).is_file() else {},
        num_parameters=sum(count_parameters(file) for file in weights),
    )


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable JSON file ({' '.join(str(error).split())})") from None


def count_parameters(weights_file: Path) -> int:
    """Parameters of a safetensors file, from its header (no tensor is read)."""
    count = 0
    with safe_open(weights_file, framework="numpy") as weights:
        for name in weights.keys():
            size = 1
            for dimension in weights.get_slice(name).get_shape():
                size *= dimension
            count += size
    return count


# ----------------------------------------------------------------------------------------------------------------------
# The card


def model_card(
    model_dir: str | os.PathLike,
    *,
    repo_id: str | None = None,
    base_model: str | None = None,
    license: str | None = None,
) -> ModelCard:
    """The model card of a model folder, from the folder alone. `repo_id` (the Hub repo it goes to) names the model
    and its usage examples; `base_model` (a Hub id) replaces the start model the folder records (kept when it is a
    Hub id); `license` replaces the licence of the training data's terms (the gate of an Aff-Wild2 model stays)."""
    folder = read_model_folder(model_dir)
    terms = folder.terms
    license = license or terms.license
    if license == "other" and not terms.license_name:
        raise InputError("license 'other' needs a licence name; give a Hub licence id (e.g. apache-2.0)")
    start_model = folder.training_info.get("start_model_hub_id")
    model_name = repo_id.split("/")[-1] if repo_id else model_name_of(folder)
    gated = {"extra_gated_prompt": terms.gated_prompt, "extra_gated_fields": terms.gated_fields}
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=folder.kind.pipeline_tag,
        tags=[*COMMON_TAGS, *folder.kind.tags, *(f"abaw-{task}" for task in affect_tasks(folder))],
        base_model=base_model or start_model,
        datasets=[terms.dataset],
        license=license,
        license_name=terms.license_name if license == "other" else None,
        license_link=terms.license_link if license == "other" else None,
        model_name=model_name,
        eval_results=eval_results(folder) or None,
        **({key: value for key, value in gated.items() if value is not None}),
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path()),
        model_id=repo_id or "path/to/model-folder",
        title=model_name,
        model_class=folder.architecture,
        predicts_affect=folder.kind.predicts_affect,
        stage=folder.kind.stage,
        stage_text=STAGES[folder.kind.stage],
        paper_url=PAPER_URL,
        notice=terms.notice,
        model_facts=model_facts(folder),
        task_rows=task_rows(folder),
        training_rows=training_rows(folder),
        result_rows=result_rows(folder),
        image_size=getattr(folder.config, "image_size", None),
    )


def write_model_card(model_dir: str | os.PathLike, **keywords) -> Path:
    """Write `model_card(model_dir, **keywords)` to model_dir/README.md (atomically) and return its path."""
    card = model_card(model_dir, **keywords)
    path = Path(model_dir) / CARD_FILE
    write_text(path, str(card))
    return path


def template_path() -> Path:
    """The card template: inside the installed package (`modeling_abaw/model_cards/`, see pyproject.toml), or in the
    top-level `model_cards/` of a source checkout (which an editable install or PYTHONPATH imports from)."""
    packaged = resources.files("modeling_abaw").joinpath("model_cards", TEMPLATE_FILE)
    if packaged.is_file():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / "model_cards" / TEMPLATE_FILE
    if source.is_file():
        return source
    raise InputError(
        f"the model card template {TEMPLATE_FILE} is missing: neither {packaged} (installed package) nor {source} "
        "(source checkout) exists; reinstall modeling-abaw"
    )


def model_name_of(folder: ModelFolder) -> str:
    return "-".join([folder.kind.default_name, *affect_tasks(folder)])


def affect_tasks(folder: ModelFolder) -> list[str]:
    return list(folder.config.tasks) if folder.kind.predicts_affect else []


# ----------------------------------------------------------------------------------------------------------------------
# model-index


def dataset_split(folder: ModelFolder) -> str:
    """The validation split the results are of: the official one, or a fold of the cross-validation."""
    split = folder.training_info.get("split", {})
    fold = split.get("fold", OFFICIAL_SPLIT)
    return "validation" if fold == OFFICIAL_SPLIT else f"validation-fold-{fold}-of-{split.get('num_folds')}"


@dataclass(frozen=True)
class ReportedMetric:
    """One metric of eval_results.json a card reports, raw (`key`) and after the smoothing policy (`smoothed/key`)."""

    task_name: str
    dataset_config: str | None  # the ABAW track (its annotation folder)
    metric_type: str
    metric_name: str
    key: str
    headline: bool  # the task's challenge metric, not a per-class value


# The raw and the smoothed value of a metric: the eval_results.json prefix and the metric-name suffix of each.
VARIANTS = (("", ""), (SMOOTHED_PREFIX, " (smoothed)"))


def reported_metrics(folder: ModelFolder) -> list[ReportedMetric]:
    """The metrics a card reports: per task its challenge metric, then its per-class values; for a pre-training model
    its held-out reconstruction loss."""
    if not folder.kind.predicts_affect:
        return [
            ReportedMetric("Masked image reconstruction", None, "loss", "Held-out reconstruction loss", "loss", True)
        ]
    metrics = []
    for name in affect_tasks(folder):
        task, text = TASKS[name], TASK_TEXTS[name]
        metrics.append(
            ReportedMetric(text.title, task.challenge_dir, text.metric_type, text.metric_name, task.metric_key, True)
        )
        metrics += [
            ReportedMetric(
                text.title,
                task.challenge_dir,
                text.metric_type,
                f"{label} {text.class_metric}",
                f"{task.metric_key}/{label}",
                False,
            )
            for label in task.labels
        ]
    return metrics


def eval_results(folder: ModelFolder) -> list[EvalResult]:
    """The model-index entries of eval_results.json: one result per task of the validation split, with every value of
    `reported_metrics` the file holds, raw and smoothed, as its metrics. The ABAW track is the dataset config, which
    keeps the tasks of a multi-task model apart (the Hub groups metrics by task type and dataset)."""
    terms, split = folder.terms, dataset_split(folder)
    return [
        EvalResult(
            task_type=folder.kind.pipeline_tag,
            task_name=metric.task_name,
            dataset_type=terms.dataset,
            dataset_name=terms.dataset_name,
            dataset_config=metric.dataset_config,
            dataset_split=split,
            metric_type=metric.metric_type,
            metric_name=metric.metric_name + suffix,
            metric_value=folder.eval_results[prefix + metric.key],
        )
        for metric in reported_metrics(folder)
        for prefix, suffix in VARIANTS
        if prefix + metric.key in folder.eval_results  # a task without any validation label is not scored
    ]


# ----------------------------------------------------------------------------------------------------------------------
# The body's tables


def model_facts(folder: ModelFolder) -> list[tuple[str, str]]:
    """(property, value) rows of what the model is: size, input and, for TMF, modalities and backbones."""
    config = folder.config
    rows = [("Parameters", f"{folder.num_parameters / 1e6:.2f}M ({folder.num_parameters:,})")]
    rows += [
        ("Hidden size", str(config.hidden_size)),
        ("Layers", str(config.num_hidden_layers)),
        ("Attention heads", str(config.num_attention_heads)),
    ]
    if hasattr(config, "image_size"):  # FaceMAE: a ViT over face crops
        rows += [
            ("Input", f"aligned face crops of {config.image_size}x{config.image_size} px (RGB)"),
            ("Patch size", str(config.patch_size)),
        ]
        if not folder.kind.predicts_affect:
            rows += [
                ("Mask ratio", f"{config.mask_ratio:g}"),
                ("Decoder layers", str(config.decoder_num_hidden_layers)),
                ("Decoder hidden size", str(config.decoder_hidden_size)),
            ]
    if hasattr(config, "clip_length"):  # TMF: a transformer over clips of per-frame features
        rows.append(("Input", f"clips of {config.clip_length} consecutive frames of per-frame features"))
        rows.append(
            ("Modalities", ", ".join(f"{name} ({config.modalities[name]}-d)" for name in config.used_modalities))
        )
        for name in config.used_modalities:
            spec = config.backbones.get(name, {})
            details = ", ".join(f"{key} {value}" for key, value in spec.items() if key != "model")
            rows.append(
                (f"Backbone of {name}", f"`{spec.get('model', 'not recorded')}`" + (f" ({details})" if details else ""))
            )
    return rows


def task_rows(folder: ModelFolder) -> list[tuple[str, str, str]]:
    """(task, output, labels in output order) of each task of an affect model."""
    return [
        (
            TASK_TEXTS[name].title,
            f"`{TASKS[name].output_key}`: {TASK_TEXTS[name].output}",
            ", ".join(TASKS[name].labels),
        )
        for name in affect_tasks(folder)
    ]


def training_rows(folder: ModelFolder) -> list[tuple[str, str]]:
    """(setting, value) rows of how the model was trained; empty when the folder has no training record."""
    info, arguments, config = folder.training_info, folder.arguments, folder.config
    if not info:
        return []
    split = info.get("split")
    rows = [
        ("Stage", f"`{info.get('stage', folder.kind.stage)}` ({STAGES[folder.kind.stage]})"),
        ("Data", f"{folder.terms.dataset_name} (`{'`, `'.join(info.get('data', []))}`)"),
        ("Start model", f"`{info['start_model']}`" if info.get("start_model") else "new model (random initialisation)"),
    ]
    if split:
        fold, folds = split["fold"], split["num_folds"]
        cross_validation = f"fold {fold} of a {folds}-fold video-level cross-validation (seed {split['fold_seed']})"
        rows.append(("Validation split", "the official one" if fold == OFFICIAL_SPLIT else cross_validation))
    for setting, key in (
        ("Epochs", "num_epochs"),
        ("Max steps", "max_steps"),
        ("Batch size", "batch_size"),
        ("Learning rate", "learning_rate"),
        ("Weight decay", "weight_decay"),
        ("Warm-up ratio", "warmup_ratio"),
        ("Layer-wise lr decay", "layer_decay"),
        ("Mixed precision", "mixed_precision"),
        ("Seed", "seed"),
    ):
        if arguments.get(key) is not None:
            rows.append((setting, f"{arguments[key]:g}" if isinstance(arguments[key], float) else str(arguments[key])))
    for name in affect_tasks(folder):
        for key in TASKS[name].loss_weight_keys:
            rows.append((f"Loss weights `{key}`", ", ".join(f"{value:.3g}" for value in getattr(config, key))))
    results = folder.eval_results
    if "step" in results:
        rows.append(("Saved at", f"step {results['step']} (epoch {results.get('epoch', 0):.2f})"))
    return rows


def result_rows(folder: ModelFolder) -> list[tuple[str, ...]]:
    """(metric, raw, smoothed) rows of the results table; a pre-training model's (metric, value)."""
    results = folder.eval_results
    rows = []
    for metric in reported_metrics(folder):
        name = f"**{metric.metric_name}**" if metric.headline and folder.kind.predicts_affect else metric.metric_name
        rows.append((name, *(format_value(results.get(prefix + metric.key)) for prefix, _ in VARIANTS)))
    if len(affect_tasks(folder)) > 1:  # the multi-task score of ABAW: the sum of the tasks' metrics
        rows.append(
            ("**Score (sum of the tasks)**", *(format_value(results.get(prefix + "score")) for prefix, _ in VARIANTS))
        )
    return rows if folder.kind.predicts_affect else [row[:2] for row in rows]


def format_value(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
