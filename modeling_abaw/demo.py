"""The end-to-end demo: the paper's whole pipeline on SynthAffect, from generated videos to a report of what each
stage adds, measured with confidence intervals on held-out test identities.

    SynthAffect -> MAE pre-training -> fine-tuning (AU, EXPR, VA) from the MAE and from a random init
    -> smoothing chosen on validation -> feature extraction (visual + audio) -> TMF vision-only and audio-visual
    -> test-set predictions -> bootstrap report (results.md/json, figures)

Every step is the package's own entry point (`generate_synthaffect`, `modeling_abaw.train.*`, `search_smoothing`,
`extract_features`, `predict_frame_table`), so the demo runs exactly what users run; `demo_report` measures and
draws. SynthAffect is a procedural sanity dataset: the scores say that the pipeline learns what the data encodes,
nothing about affect recognition in the wild.
"""

import dataclasses
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from PIL import Image
from transformers import AutoConfig

from .configuration_face_mae import FaceMAEPreTrainingConfig
from .configuration_tmf import TMFConfig
from .data import AffWild2, ClipDataset
from .data.synth import generate_synthaffect
from .demo_report import (
    CHANCE,
    FRAME_MAE_INIT,
    FRAME_RANDOM_INIT,
    FRAME_SMOOTHED,
    TMF_AUDIO_VISUAL,
    TMF_VISION,
    TestSet,
    bootstrap_report,
    plot_mae_reconstructions,
    write_demo_report,
)
from .demo_settings import DemoSettings
from .evaluation import TablePredictions, predict_frame_table
from .features import FeatureCache, extract_features
from .inference.pipeline import resolve_device
from .machine import cpu_model
from .metrics import chance_level_predictions
from .modeling_face_mae import FaceMAEForAffect, FaceMAEForPreTraining
from .modeling_tmf import TMFForAffect
from .presets import face_mae_preset
from .smoothing import postprocess_by_video
from .smoothing_search import search_smoothing, store_smoothing_policy
from .tasks import TASK_NAMES, TASKS
from .train import finetune, pretrain, tmf

# The fusion transformer keeps the paper's 4 layers, dropout 0.3 and K = 100, at a width that suits the small models.
DEMO_TMF = dict(hidden_size=128, num_attention_heads=4, intermediate_size=256)
BOOTSTRAP_RESAMPLES = 1000
RECONSTRUCTED_CROPS = 4  # test crops in mae_reconstructions.png


class StageClock:
    """Announces each step ("[3/10] ...") and records its wall time, for results.md and durations.json."""

    def __init__(self, steps: int):
        self.steps, self.done, self.durations = steps, 0, {}

    @contextmanager
    def stage(self, name: str, text: str):
        self.done += 1
        print(f"\n[{self.done}/{self.steps}] {text}", flush=True)
        started = time.perf_counter()
        yield
        self.durations[name] = time.perf_counter() - started


def run_demo(settings: DemoSettings) -> dict:
    output = settings.output
    device = resolve_device(settings.device)
    output.mkdir(parents=True, exist_ok=True)
    clock = StageClock(steps=10 - (settings.pretrained is not None))  # no pre-training step with a given checkpoint
    common = ["--seed", str(settings.seed), "--num-workers", str(settings.num_workers), "--logging-steps", "10"]
    data = output / "synthaffect"

    with clock.stage("SynthAffect", f"Generating SynthAffect: {settings.videos} videos x {settings.frames} frames"):
        print(generate_synthaffect(data, settings.videos, settings.frames, settings.seed, progress=True).describe())

    pretrained = settings.pretrained
    if pretrained is None:
        with clock.stage("MAE pre-training", f"MAE pre-training of a {settings.model_size} FaceMAE on face crops"):
            size_dir = output / "facemae_config"
            # Normalised-pixel targets (MAE's better variant, MAE-Face's choice): with raw pixels a small MAE spends
            # itself on skin, hair and background colours, and its features fine-tuned worse than a random init.
            config = FaceMAEPreTrainingConfig(**face_mae_preset(settings.model_size), norm_pix_loss=True)
            config.save_pretrained(size_dir)
            dataset = AffWild2(data)
            crops = [str(dataset.image_dir(video)) for video in dataset.videos(["train", "validation"])]
            _run(pretrain.main, ["--data", *crops, "--model", str(size_dir), "--output-dir", str(output / "pretrain"),
                 "--num-epochs", str(settings.pretrain_epochs), "--batch-size", "128", "--base-learning-rate", "2e-3",
                 "--validation-fraction", "0.05", *common])  # fmt: skip
        pretrained = str(output / "pretrain" / "best")

    # Eq. 1 weights each AU's whole cross-entropy by 1/N_j, which leaves a rare AU's probability under the 0.5
    # threshold after a few epochs (F1 0 for AU10, AU12, AU23, AU24 on validation): weighting its positive term by
    # negatives/positives moves every AU's operating point to 50/50 (validation AU F1 0.40 -> 0.47, seed 0).
    affect_loss = ["--au-positive-weighting"]
    # The MAE claim is measured by the same fine-tuning from a random init of the same architecture.
    random_init = output / "random_init_config"
    AutoConfig.from_pretrained(pretrained).save_pretrained(random_init)
    frame_models = {FRAME_RANDOM_INIT: (random_init, output / "finetune_random_init"),
                    FRAME_MAE_INIT: (pretrained, output / "finetune")}  # fmt: skip
    for name, (start, run_dir) in frame_models.items():
        with clock.stage(name, f"Fine-tuning FaceMAEForAffect frame by frame for AU, EXPR and VA: {name}"):
            _run(finetune.main, ["--data", str(data), "--model", str(start), "--output-dir", str(run_dir),
                 "--tasks", "au,expr,va", "--num-epochs", str(settings.finetune_epochs), "--batch-size", "64",
                 "--learning-rate", "1e-3", "--layer-decay", "1.0", *affect_loss, *common])  # fmt: skip
    frame_model = output / "finetune" / "best"

    accelerator = Accelerator(cpu=True)
    with clock.stage("smoothing search", "Choosing each task's smoothing on the validation videos (Table 9)"):
        choose_smoothing(accelerator, data, frame_model)

    with clock.stage("features", f"Extracting per-frame features: FaceMAE + audio ({settings.audio})"):
        audio = [name.strip() for name in settings.audio.split(",") if name.strip()]
        cache = extract_features(data, str(frame_model), output / "features", audio=audio, device=str(device))

    tmf_models = {TMF_VISION: ["mae"], TMF_AUDIO_VISUAL: list(cache.modalities)}
    tmf_config = output / "tmf_config"
    TMFConfig(**DEMO_TMF).save_pretrained(tmf_config)
    # Batches of 8 clips, fewer when short videos give fewer training clips.
    train_clips = len(ClipDataset(AffWild2(data).frame_table("train"), clip_length=TMFConfig().clip_length))
    for name, modalities in tmf_models.items():
        with clock.stage(name, f"Training {name.removesuffix(' + smoothing')} ({', '.join(modalities)})"):
            run_dir = _run_dir(output, name)
            _run(tmf.main, ["--data", str(data), "--features", str(cache.path), "--tasks", "au,expr,va",
                 "--modalities", ",".join(modalities), "--model", str(tmf_config), "--output-dir", str(run_dir),
                 "--num-epochs", str(settings.tmf_epochs), "--batch-size", str(min(8, train_clips)),
                 "--learning-rate", "5e-4", "--eval-steps", "10", "--save-steps", "1000", *affect_loss,
                 *common])  # fmt: skip
            choose_smoothing(accelerator, data, run_dir / "best", cache)

    with clock.stage("evaluation", "Predicting the held-out test videos; bootstrap over videos"):
        test, models = predict_test_set(
            accelerator, data, cache, {name: run_dir / "best" for name, (_, run_dir) in frame_models.items()},
            {name: _run_dir(output, name) / "best" for name in tmf_models},
        )  # fmt: skip
        report = bootstrap_report(test, models, num_resamples=BOOTSTRAP_RESAMPLES, seed=settings.seed)

    with clock.stage("report", "Writing results.md, results.json and the figures"):
        if (Path(pretrained) / "model.safetensors").is_file():
            plot_mae_reconstructions(
                FaceMAEForPreTraining.from_pretrained(pretrained),
                sample_test_crops(data, RECONSTRUCTED_CROPS),
                output / "mae_reconstructions.png",
                seed=settings.seed,
            )
        write_demo_report(
            report, output, settings=settings_record(settings), machine=machine_record(),
            durations=clock.durations, test=test, models=models, confusion_model=FRAME_SMOOTHED,
            timeline_video=str(test.videos[0]), timeline_models=[FRAME_SMOOTHED, TMF_VISION, TMF_AUDIO_VISUAL],
        )  # fmt: skip
    print((output / "results.md").read_text())
    print(f"Results: {output / 'results.md'}; figures: {output}/*.png")
    return report


def _run(stage_main, argv: list[str]) -> None:
    status = stage_main(argv)
    if status:
        raise RuntimeError(f"training stage {stage_main.__module__} failed with status {status}")


def _run_dir(output: Path, name: str) -> Path:
    return output / name.removesuffix(" + smoothing").lower().replace(" ", "_").replace("-", "_")


def choose_smoothing(accelerator, data: Path, model_dir: Path, cache: FeatureCache | None = None) -> None:
    """The paper's Table 9 procedure: each task's smoothing searched on the raw validation predictions of the model,
    and stored in its config (and card) for `abaw predict`, the Space and the test evaluation."""
    model_class = FaceMAEForAffect if cache is None else TMFForAffect
    model = model_class.from_pretrained(model_dir).eval()
    frames = AffWild2(data).frame_table("validation")
    table = predict_frame_table(accelerator, model, frames, None if cache is None else cache.load_features)
    search = search_smoothing(table.predictions, table.labels, table.videos, table.has_face, model.config.tasks)
    store_smoothing_policy(model_dir, {**model.config.smoothing_policy, **search.policy}, search)
    print(search.table_9())


@torch.inference_mode()
def predict_test_set(
    accelerator, data: Path, cache: FeatureCache, frame_models: dict[str, Path], tmf_models: dict[str, Path]
) -> tuple[TestSet, dict[str, dict[str, np.ndarray]]]:
    """The test frames and every model's post-processed predictions of them: chance, the frame models raw (missing
    faces filled from the nearest frame), the MAE-initialised frame model and the TMF models with the smoothing chosen
    on validation."""
    frames = AffWild2(data).frame_table("test")
    columns = frames.with_format("numpy")
    test = TestSet(videos=columns["video"][:], labels={task: columns[TASKS[task].label_key][:] for task in TASK_NAMES})
    models = {CHANCE: chance_level_predictions(test.labels)}
    no_smoothing = {task: {"filter": "none"} for task in TASK_NAMES}
    for name, path in frame_models.items():
        model = FaceMAEForAffect.from_pretrained(path).eval()
        table = predict_frame_table(accelerator, model, frames)
        models[name] = _postprocess(table, no_smoothing)
        if name == FRAME_MAE_INIT:
            models[FRAME_SMOOTHED] = _postprocess(table, model.config.smoothing_policy)
    for name, path in tmf_models.items():
        model = TMFForAffect.from_pretrained(path).eval()
        table = predict_frame_table(accelerator, model, frames, cache.load_features)
        models[name] = _postprocess(table, model.config.smoothing_policy)
    return test, models


def _postprocess(table: TablePredictions, policy: dict) -> dict[str, np.ndarray]:
    return postprocess_by_video(table.predictions, table.videos, table.has_face, policy)


def sample_test_crops(data: Path, count: int) -> list[Image.Image]:
    """`count` face crops of the first test video, spread over its frames."""
    frames = AffWild2(data).frame_table("test").with_format("numpy")
    first = frames["video"][:] == frames["video"][0]
    paths = frames["image_path"][:][first & frames["has_face"][:]]
    return [Image.open(paths[i]).convert("RGB") for i in np.linspace(0, len(paths) - 1, count).astype(int)]


def settings_record(settings: DemoSettings) -> dict:
    """The settings as results.json records them: without the output folder, so two runs of the same settings
    elsewhere write the same bytes."""
    return {key: value for key, value in dataclasses.asdict(settings).items() if key != "output"}


def machine_record() -> dict:
    return {"cpu": cpu_model(), "torch threads": torch.get_num_threads(), "dtype": str(torch.get_default_dtype())}
