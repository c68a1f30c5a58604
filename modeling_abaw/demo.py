"""The end-to-end demo: the paper's whole pipeline on SynthAffect, from generated videos to a results table.

    SynthAffect -> MAE pre-training -> fine-tuning (AU, EXPR, VA) -> feature extraction (visual + audio)
    -> TMF vision-only and audio-visual -> evaluation on the held-out test videos -> results.md/json + figures

Every step is the package's own entry point (`generate_synthaffect`, `modeling_abaw.train.*`, `extract_features`), so
the demo runs exactly what users run. SynthAffect is a procedural sanity dataset: the scores say that the pipeline
learns what the data encodes, nothing about affect recognition in the wild.
"""

import json
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from matplotlib.figure import Figure
from torch.utils.data import DataLoader

from .configuration_face_mae import FaceMAEPreTrainingConfig
from .configuration_tmf import TMFConfig
from .data import AffWild2, ClipDataset, IndexedDataset
from .data.synth import generate_synthaffect
from .demo_settings import DemoSettings
from .evaluation import abaw_scores, affect_predictions, evaluate_clips
from .features import FeatureCache, extract_features
from .inference.pipeline import resolve_device
from .io import atomic_path, write_json, write_text
from .metrics import chance_level_metrics
from .modeling_face_mae import FaceMAEForAffect
from .modeling_tmf import TMFForAffect
from .presets import face_mae_preset
from .tasks import TASK_NAMES, TASKS
from .train import finetune, pretrain, tmf

# The fusion transformer keeps the paper's 4 layers, dropout 0.3 and K = 100, at a width that suits the small models.
DEMO_TMF = dict(hidden_size=128, num_attention_heads=4, intermediate_size=256)


def run_demo(settings: DemoSettings) -> dict:
    output = settings.output
    device = resolve_device(settings.device)
    output.mkdir(parents=True, exist_ok=True)
    steps = 7 - (settings.pretrained is not None)  # the pre-training step is skipped with a given checkpoint
    step = iter(range(1, steps + 1))

    def announce(text: str) -> None:
        print(f"\n[{next(step)}/{steps}] {text}", flush=True)

    announce(f"Generating SynthAffect: {settings.videos} videos x {settings.frames} frames (a sanity dataset)")
    data = output / "synthaffect"
    print(generate_synthaffect(data, settings.videos, settings.frames, settings.seed, progress=True).describe())
    common = ["--seed", str(settings.seed), "--num-workers", str(settings.num_workers), "--logging-steps", "5"]

    if settings.pretrained is None:
        announce(f"MAE pre-training of a {settings.model_size} FaceMAE on the training videos' face crops")
        size_dir = output / "facemae_config"
        FaceMAEPreTrainingConfig(**face_mae_preset(settings.model_size)).save_pretrained(size_dir)
        dataset = AffWild2(data)
        crops = [str(dataset.image_dir(video)) for video in dataset.videos(["train", "validation"])]
        _run(pretrain.main, ["--data", *crops, "--model", str(size_dir), "--output-dir", str(output / "pretrain"),
             "--num-epochs", str(settings.pretrain_epochs), "--batch-size", "64", "--base-learning-rate", "1e-3",
             "--validation-fraction", "0.05", *common])  # fmt: skip
        pretrained = str(output / "pretrain" / "best")
    else:
        pretrained = settings.pretrained

    announce("Fine-tuning FaceMAEForAffect frame by frame for AU, EXPR and VA")
    _run(finetune.main, ["--data", str(data), "--model", pretrained, "--output-dir", str(output / "finetune"),
         "--tasks", "au,expr,va", "--num-epochs", str(settings.finetune_epochs), "--batch-size", "64",
         "--learning-rate", "3e-4", *common])  # fmt: skip
    frame_model = output / "finetune" / "best"

    announce(f"Extracting per-frame features: FaceMAE + audio ({settings.audio})")
    audio = [name.strip() for name in settings.audio.split(",") if name.strip()]
    cache = extract_features(data, str(frame_model), output / "features", audio=audio, device=str(device))

    announce("Training TMF: vision only, and vision + audio")
    tmf_config = output / "tmf_config"
    TMFConfig(**DEMO_TMF).save_pretrained(tmf_config)
    # Batches of 8 clips, fewer when short videos give fewer training clips.
    train_clips = len(ClipDataset(AffWild2(data).frame_table("train"), clip_length=TMFConfig().clip_length))
    clip_batch = str(min(8, train_clips))
    fusions = {"TMF vision-only": ["mae"], "TMF audio-visual": list(cache.modalities)}
    for name, modalities in fusions.items():
        run_dir = _run_dir(output, name)
        _run(tmf.main, ["--data", str(data), "--features", str(cache.path), "--tasks", "au,expr,va",
             "--modalities", ",".join(modalities), "--model", str(tmf_config), "--output-dir", str(run_dir),
             "--num-epochs", str(settings.tmf_epochs),
             "--batch-size", clip_batch, "--learning-rate", "5e-4", "--eval-steps", "10", "--save-steps", "1000",
             *common])  # fmt: skip

    announce("Evaluating on the held-out test videos")
    results = evaluate_on_test(data, cache, frame_model, {name: _run_dir(output, name) / "best" for name in fusions})
    announce("Writing the results table and figures")
    write_results(results, output, settings)
    return results


def _run(stage_main, argv: list[str]) -> None:
    status = stage_main(argv)
    if status:
        raise RuntimeError(f"training stage {stage_main.__module__} failed with status {status}")


def _run_dir(output: Path, name: str) -> Path:
    return output / name.lower().replace(" ", "_").replace("-", "_")


@torch.inference_mode()
def evaluate_on_test(data: Path, cache: FeatureCache, frame_model: Path, tmf_models: dict[str, Path]) -> dict:
    """Scores on the test videos: chance, the frame model (raw and smoothed) and each TMF model (smoothed, as the
    paper's final pipeline; raw in the JSON)."""
    frames = AffWild2(data).frame_table("test")
    columns = frames.with_format("numpy")
    labels = {task: columns[TASKS[task].label_key][:] for task in TASK_NAMES}
    results = {"chance level": chance_level_metrics(labels)}

    # The frame model's heads applied to its own cached pooled features give exactly its per-frame predictions.
    model = FaceMAEForAffect.from_pretrained(frame_model).eval()
    face_rows = np.flatnonzero(columns["has_face"][:])
    features = torch.cat([cache.load_features(video, 0, count)["mae"] for video, count in _video_lengths(frames)])
    predictions = affect_predictions(model.affect_heads(features[face_rows]), model.config.tasks)
    scores = abaw_scores(
        frames, face_rows, {k: v.numpy() for k, v in predictions.items()}, model.config.smoothing_policy
    )
    results["frame model (FaceMAE)"] = _without_prefix(scores, raw=True)
    results["frame model + smoothing"] = _without_prefix(scores, raw=False)

    accelerator = Accelerator(cpu=True)
    for name, path in tmf_models.items():
        model = TMFForAffect.from_pretrained(path).eval()
        clips = ClipDataset(frames, cache.load_features, clip_length=model.config.clip_length)
        loader = DataLoader(IndexedDataset(clips, seed=0), batch_size=8)
        scores = evaluate_clips(accelerator, model, loader, clips, frames)
        results[f"{name} + smoothing"] = _without_prefix(scores, raw=False)
        results[f"{name} (raw)"] = _without_prefix(scores, raw=True)
    return results


def _video_lengths(frames) -> list[tuple[str, int]]:
    """(video, number of rows) in table order; a frame table holds each video as one run of rows."""
    names, first, counts = np.unique(frames.with_format("numpy")["video"][:], return_index=True, return_counts=True)
    return [(str(names[i]), int(counts[i])) for i in np.argsort(first)]


def _without_prefix(scores: dict, raw: bool) -> dict:
    if raw:
        return {k: v for k, v in scores.items() if not k.startswith("smoothed/")}
    return {k.removeprefix("smoothed/"): v for k, v in scores.items() if k.startswith("smoothed/")}


def results_table(results: dict) -> str:
    columns = [TASKS[task].metric_key for task in TASK_NAMES] + ["score"]
    lines = ["| model | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, scores in results.items():
        lines.append(
            f"| {name} | " + " | ".join(f"{scores.get(column, float('nan')):.3f}" for column in columns) + " |"
        )
    return "\n".join(lines)


def write_results(results: dict, output: Path, settings: DemoSettings) -> None:
    table = results_table(results)
    print(table)
    note = (
        "Test-set scores of the demo run on SynthAffect, a procedural sanity dataset: they show that each stage learns "
        "what the data encodes, not how well affect is recognised in the wild.\n\n"
        f"Settings: {settings.videos} videos x {settings.frames} frames, FaceMAE {settings.model_size}, "
        f"audio {settings.audio}, seed {settings.seed}.\n\n"
    )
    write_text(output / "results.md", "# modeling-abaw demo results\n\n" + note + table + "\n")
    write_json(output / "results.json", results)
    plot_training_curves(output)
    plot_scores(results, output / "scores.png")
    print(f"\nResults: {output / 'results.md'}; figures: {output / 'training_curves.png'}, {output / 'scores.png'}")


def plot_training_curves(output: Path) -> None:
    runs = [path.parent for path in sorted(output.glob("*/history.json"))]
    figure = Figure(figsize=(12, 4.5))
    axes = figure.subplots(1, 2)
    for run in runs:
        history = json.loads((run / "history.json").read_text())
        train = history.get("train", [])
        if train:
            axes[0].plot([e["step"] for e in train], [e["loss"] for e in train], label=run.name)
        evals = [e for e in history.get("eval", []) if "smoothed/score" in e]
        if evals:
            axes[1].plot([e["step"] for e in evals], [e["smoothed/score"] for e in evals], marker="o", label=run.name)
    axes[0].set(title="training loss", xlabel="optimizer step", yscale="log")
    axes[1].set(title="validation score (AU F1 + EXPR F1 + VA CCC, smoothed)", xlabel="optimizer step")
    for axis in axes:
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    _save_figure(figure, output / "training_curves.png")


def plot_scores(results: dict, path: Path) -> None:
    columns = [TASKS[task].metric_key for task in TASK_NAMES]
    figure = Figure(figsize=(10, 4.5))
    axis = figure.subplots()
    width = 0.8 / len(results)
    for i, (name, scores) in enumerate(results.items()):
        values = [scores.get(column, np.nan) for column in columns]
        axis.bar(np.arange(len(columns)) + i * width, values, width, label=name)
    axis.set_xticks(np.arange(len(columns)) + 0.4 - width / 2, ["AU mean F1", "EXPR macro F1", "VA mean CCC"])
    axis.set(title="SynthAffect test videos (sanity data)", ylim=(0, 1))
    axis.legend(fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    _save_figure(figure, path)


def _save_figure(figure, path: Path) -> None:
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
