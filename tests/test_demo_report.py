import json

import numpy as np
import pytest
import torch
from PIL import Image

from modeling_abaw.configuration_face_mae import FaceMAEPreTrainingConfig
from modeling_abaw.demo_report import (
    ABLATIONS,
    FIGURES,
    Ablation,
    TestSet,
    bootstrap_report,
    plot_mae_reconstructions,
    readme_section,
    resample_weights,
    resampled_metrics,
    verdict,
    write_demo_report,
)
from modeling_abaw.metrics import compute_abaw_metrics
from modeling_abaw.modeling_face_mae import FaceMAEForPreTraining
from modeling_abaw.presets import face_mae_preset
from modeling_abaw.tasks import AU, EXPR, VA

PNG = b"\x89PNG\r\n\x1a\n"
FRAME_MODEL, TMF = ABLATIONS[1].baseline, ABLATIONS[1].variant


def make_test_set(seed=0, num_videos=12) -> TestSet:
    """Videos of different lengths, labels with "no label" markers; one video without any EXPR label."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 60, size=num_videos)
    videos = np.repeat([f"video{i:02d}" for i in range(num_videos)], lengths)
    n = len(videos)
    au = (rng.random((n, AU.num_outputs)) < 0.3).astype(np.float32)
    au[rng.random(au.shape) < 0.1] = AU.invalid_value
    expr = rng.integers(0, EXPR.num_outputs, size=n)
    expr[rng.random(n) < 0.1] = EXPR.invalid_value
    expr[videos == "video03"] = EXPR.invalid_value
    # Valence/arousal drift smoothly within a video, as real annotations do.
    va = np.clip(np.cumsum(rng.normal(0, 0.1, size=(n, 2)), axis=0) % 2 - 1, -1, 1).astype(np.float32)
    va[rng.random(va.shape) < 0.1] = VA.invalid_value
    return TestSet(videos=videos, labels={"au": au, "expr": expr, "va": va})


def noisy_predictions(test: TestSet, noise: float, seed: int) -> dict:
    """Predictions that follow the labels, blurred by `noise` (large noise: chance)."""
    rng = np.random.default_rng(seed)
    au = np.clip(np.where(test.labels["au"] == 1, 0.7, 0.3) + rng.normal(0, noise, test.labels["au"].shape), 0, 1)
    expr = rng.random((len(test.videos), EXPR.num_outputs)) * noise
    expr[np.arange(len(expr)), np.maximum(test.labels["expr"], 0)] += 0.5
    va_labels = np.where(VA.is_labelled(test.labels["va"]), test.labels["va"], 0)
    va = np.clip(va_labels + rng.normal(0, noise, va_labels.shape), -1, 1)
    return {"au": au, "expr": expr / expr.sum(1, keepdims=True), "va": va}


def constant_va(test: TestSet, seed: int) -> dict:
    """A chance-level-like model: random AU/EXPR, constant VA (whose CCC is exactly 0)."""
    rng = np.random.default_rng(seed)
    return {
        "au": rng.random(test.labels["au"].shape),
        "expr": rng.random((len(test.videos), EXPR.num_outputs)),
        "va": np.full((len(test.videos), 2), 0.1),
    }


@pytest.fixture(scope="module")
def test_set():
    return make_test_set()


@pytest.fixture(scope="module")
def models(test_set):
    return {
        "chance level": constant_va(test_set, 1),
        FRAME_MODEL: noisy_predictions(test_set, 2.0, 2),
        TMF: noisy_predictions(test_set, 0.3, 3),
    }


def report_files(output, test_set, models, seed=0):
    report = bootstrap_report(test_set, models, num_resamples=200, seed=seed)
    history = {
        "train": [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}],
        "eval": [{"step": 2, "smoothed/score": 1}],
    }
    (output / "finetune").mkdir(parents=True)
    (output / "finetune" / "history.json").write_text(json.dumps(history))
    section = write_demo_report(
        report, output, settings={"seed": seed, "videos": 12}, machine={"cpu": "test CPU", "torch threads": 2},
        durations={"fine-tuning": 61.25, "evaluation": 3.0}, test=test_set, models=models,
        confusion_model=TMF, timeline_video="video01", timeline_models=[FRAME_MODEL, TMF],
    )  # fmt: skip
    return report, section


def test_point_values_are_compute_abaw_metrics_on_all_test_frames(test_set, models):
    report = bootstrap_report(test_set, models, num_resamples=50)
    for model in report["models"]:
        predictions = models[model["name"]]
        expected = compute_abaw_metrics(getattr(predictions, "predictions", predictions), test_set.labels)
        assert {key: interval["value"] for key, interval in model["metrics"].items()} == expected
        assert all(interval["low"] <= interval["high"] for interval in model["metrics"].values())
    assert report["models"][0]["metrics"]["va_ccc"]["value"] == 0.0  # constant predictions: CCC exactly 0


def test_resampled_metrics_equal_recomputation_on_concatenated_frames(test_set, models):
    # All videos once, four bootstrap resamples, and video03 alone (no EXPR label there).
    weights = np.vstack([np.ones(12, dtype=np.int64), resample_weights(12, 4, seed=7), np.eye(12, dtype=np.int64)[3]])
    starts = np.r_[0, np.flatnonzero(test_set.videos[1:] != test_set.videos[:-1]) + 1, len(test_set.videos)]
    for name in ("chance level", FRAME_MODEL):
        fast = resampled_metrics(test_set, models[name], weights)
        for row, counts in enumerate(weights):
            frames = np.concatenate([np.arange(starts[v], starts[v + 1]) for v in np.repeat(np.arange(12), counts)])
            labels = {task: values[frames] for task, values in test_set.labels.items()}
            expected = compute_abaw_metrics({task: values[frames] for task, values in models[name].items()}, labels)
            assert set(key for key, values in fast.items() if not np.isnan(values[row])) == set(expected)
            for key, value in expected.items():
                assert fast[key][row] == pytest.approx(value, abs=1e-12), (name, row, key)
    assert "expr_f1" not in expected  # the last resample, video03 alone, has no EXPR label: not scored


def test_same_seed_gives_identical_results_json(tmp_path, test_set, models):
    report_files(tmp_path / "a", test_set, models)
    report_files(tmp_path / "b", test_set, models)
    report_files(tmp_path / "c", test_set, models, seed=1)
    first = (tmp_path / "a" / "results.json").read_bytes()
    assert first == (tmp_path / "b" / "results.json").read_bytes()
    assert json.loads(first)["models"] != json.loads((tmp_path / "c" / "results.json").read_text())["models"]
    assert "61.2" in (tmp_path / "a" / "results.md").read_text()  # durations: results.md and durations.json only
    assert "fine-tuning" not in first.decode()
    assert json.loads((tmp_path / "a" / "durations.json").read_text()) == {"fine-tuning": 61.2, "evaluation": 3.0}


def test_verdicts_follow_the_confidence_interval(test_set):
    good, weak = noisy_predictions(test_set, 0.3, 3), noisy_predictions(test_set, 2.0, 2)
    noise_a, noise_b = noisy_predictions(test_set, 3.0, 4), noisy_predictions(test_set, 3.0, 5)
    ablations = (
        Ablation("clear effect", "Table 1", "weak", "good", ("score", "au_f1")),
        Ablation("reversed", "Table 2", "good", "weak", ("va_ccc/arousal",)),
        Ablation("noise", "Table 3", "noise a", "noise b", ("va_ccc",)),
        Ablation("missing model", "Table 4", "weak", "not trained", ("score",)),
    )
    models = {"good": good, "weak": weak, "noise a": noise_a, "noise b": noise_b}
    rows = bootstrap_report(test_set, models, num_resamples=300, ablations=ablations)["ablations"]
    assert [(row["ablation"], row["metric"], row["verdict"]) for row in rows] == [
        ("clear effect", "score", "shown"),
        ("clear effect", "au_f1", "shown"),
        ("reversed", "va_ccc/arousal", "opposite"),
        ("noise", "va_ccc", "not shown"),
    ]
    assert verdict(0.01, 0.2) == "shown" and verdict(-0.2, -0.01) == "opposite" and verdict(-0.1, 0.1) == "not shown"


def test_report_writes_tables_and_figures(tmp_path, test_set, models):
    report, _ = report_files(tmp_path, test_set, models)
    markdown = (tmp_path / "results.md").read_text()
    assert "sanity dataset" in markdown
    assert "| model | AU F1 | EXPR F1 | valence CCC | arousal CCC | VA CCC | score |" in markdown
    assert "| ablation | paper | metric | difference [95 % CI] | verdict |" in markdown
    assert f"- {ABLATIONS[1].name}: {TMF} − {FRAME_MODEL}" in markdown
    assert "| model | " + " | ".join(AU.labels) + " |" in markdown
    assert "| model | " + " | ".join(EXPR.labels) + " |" in markdown
    tmf_f1 = next(model for model in report["models"] if model["name"] == TMF)["metrics"]["au_f1"]
    assert f"| {TMF} | {tmf_f1['value']:.3f} [{tmf_f1['low']:.2f}, {tmf_f1['high']:.2f}] |" in markdown
    assert [row["ablation"] for row in report["ablations"]] == [ABLATIONS[1].name] * len(ABLATIONS[1].metrics)
    for name in FIGURES:
        if name != "mae_reconstructions.png":  # drawn from a model, by its own function
            assert (tmp_path / name).read_bytes()[:8] == PNG, name


def test_readme_section_round_trips_from_results_json(tmp_path, test_set, models):
    _, section = report_files(tmp_path, test_set, models)
    durations = json.loads((tmp_path / "durations.json").read_text())
    assert readme_section(json.loads((tmp_path / "results.json").read_text()), durations) == section
    assert "| model | AU F1 |" in section and "verdict" in section and "docs/demo/scores.png" in section
    assert "Duration: 1.1 min" in section and "test CPU" in section


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_mae_reconstructions_are_deterministic_pngs(tmp_path, norm_pix_loss):
    torch.manual_seed(0)
    config = FaceMAEPreTrainingConfig(**face_mae_preset("demo-tiny"), norm_pix_loss=norm_pix_loss)
    model = FaceMAEForPreTraining(config).train()
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(2)]
    plot_mae_reconstructions(model, images, tmp_path / "a.png", seed=3)
    plot_mae_reconstructions(model, images, tmp_path / "b.png", seed=3)
    plot_mae_reconstructions(model, images, tmp_path / "c.png", seed=4)
    first = (tmp_path / "a.png").read_bytes()
    assert first[:8] == PNG and first == (tmp_path / "b.png").read_bytes()
    assert first != (tmp_path / "c.png").read_bytes()  # another mask
    assert model.training  # the caller's mode is restored
