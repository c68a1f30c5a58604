"""Model cards (modeling_abaw.hub.cards, `abaw model-card`): the README.md of every model folder a training stage
writes, parsed back with huggingface_hub: its model-index equals eval_results.json, its YAML and licence follow the
training data."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results
from test_train import QUICK, make_feature_cache, make_pretrained_face_mae, make_synthaffect, make_tmf_config, run

from modeling_abaw.cli import main as abaw
from modeling_abaw.errors import InputError
from modeling_abaw.hub import cards
from modeling_abaw.hub.cards import model_card, write_model_card
from modeling_abaw.hub.templates import template_path
from modeling_abaw.tasks import TASKS
from modeling_abaw.train import finetune, pretrain, tmf

COMMON_TAGS = {"action-units", "facial-expression-recognition", "valence-arousal", "abaw", "facial-affect"}
# The card's name of each task's challenge metric and of its per-class values (after the label).
METRIC_NAMES = {"au": ("AU mean F1", "F1"), "expr": ("EXPR macro F1", "F1"), "va": ("VA mean CCC", "CCC")}
ONE_STEP = [*QUICK, "--max_steps", "1", "--report_to", "none"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One-step runs of the three stages on tiny SynthAffect: stage -> its output folder."""
    root = tmp_path_factory.mktemp("card-runs")
    synth = make_synthaffect(root / "synth")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = str(make_pretrained_face_mae(root / "face-mae"))
        run(finetune.main, ["--data", str(synth), "--model", start, "--tasks", "au,expr,va"]
            + ["--output_dir", str(root / "finetune"), *ONE_STEP])  # fmt: skip
        features = make_feature_cache(synth, root / "features").path
        run(tmf.main, ["--data", str(synth), "--features", str(features), "--model", str(make_tmf_config(root / "c"))]
            + ["--tasks", "expr,va", "--output_dir", str(root / "tmf"), *ONE_STEP, "--batch_size", "2"])  # fmt: skip
        run(pretrain.main, ["--data", str(synth / "cropped_aligned"), "--model", start, "--validation_fraction", "0.1"]
            + ["--output_dir", str(root / "pretrain"), *ONE_STEP])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    return {stage: root / stage for stage in ("finetune", "tmf", "pretrain")}


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def model_index(card_path: Path) -> list[dict]:
    """The model-index of a card as its YAML says it."""
    return metadata_load(card_path)["model-index"]


def card_metrics(card_path: Path) -> dict[tuple[str | None, str], float]:
    """(dataset config, metric name) -> value of the card's model-index, parsed by huggingface_hub."""
    _, results = model_index_to_eval_results(model_index(card_path))
    return {(result.dataset_config, result.metric_name): result.metric_value for result in results}


def expected_metrics(results: dict, tasks: list[str]) -> dict[tuple[str, str], float]:
    """What the model-index must hold of eval_results.json: per task its metric and per-class values, raw and
    smoothed."""
    expected = {}
    for name in tasks:
        task, (metric, class_metric) = TASKS[name], METRIC_NAMES[name]
        names = {
            metric: task.metric_key,
            **{f"{label} {class_metric}": f"{task.metric_key}/{label}" for label in task.labels},
        }
        for metric_name, key in names.items():
            expected[task.challenge_dir, metric_name] = results[key]
            expected[task.challenge_dir, f"{metric_name} (smoothed)"] = results[f"smoothed/{key}"]
    return expected


@pytest.mark.parametrize("stage, tasks, pipeline_tag", [
    ("finetune", ["au", "expr", "va"], "image-classification"),
    ("tmf", ["expr", "va"], "video-classification"),
])  # fmt: skip
def test_affect_cards_report_eval_results_exactly(runs, stage, tasks, pipeline_tag):
    for folder in ("best", "final"):
        model_dir = runs[stage] / folder
        card = ModelCard.load(model_dir / "README.md")
        results = read_json(model_dir / "eval_results.json")
        assert card_metrics(model_dir / "README.md") == expected_metrics(results, tasks)
        # One result per task of the validation split, on the card's pipeline task.
        (index,) = model_index(model_dir / "README.md")
        assert len(index["results"]) == len(tasks)
        assert {result["dataset"]["split"] for result in index["results"]} == {"validation"}
        assert {result["task"]["type"] for result in index["results"]} == {pipeline_tag}
        data = card.data
        assert (data.library_name, data.pipeline_tag) == ("transformers", pipeline_tag)
        assert COMMON_TAGS <= set(data.tags) and {f"abaw-{task}" for task in tasks} <= set(data.tags)
        assert data.base_model is None  # started from a local folder
        assert data.datasets == ["synthaffect"]
        info = read_json(model_dir / "training_info.json")
        assert (info["stage"], info["synthaffect"], info["tasks"]) == (stage, True, tasks)
        for name in tasks:  # the label names, in output order
            assert ", ".join(TASKS[name].labels) in card.text
        assert 'AutoModel.from_pretrained("path/to/model-folder", trust_remote_code=True)' in card.text
        assert "AffectPipeline.from_pretrained" in card.text and "abaw predict" in card.text


def test_pretraining_card_reports_the_held_out_loss(runs):
    model_dir = runs["pretrain"] / "final"
    card = ModelCard.load(model_dir / "README.md")
    assert card_metrics(model_dir / "README.md") == {
        (None, "Held-out reconstruction loss"): read_json(model_dir / "eval_results.json")["loss"]
    }
    assert card.data.pipeline_tag == "image-feature-extraction"
    assert "masked-autoencoder" in card.data.tags
    info = read_json(model_dir / "training_info.json")
    assert info["stage"] == "pretrain" and info["synthaffect"] is True  # its data: SynthAffect's cropped_aligned/
    assert "abaw train finetune --model path/to/model-folder" in card.text


def test_a_synthaffect_model_is_apache_and_says_it_is_a_sanity_model(runs):
    card = ModelCard.load(runs["finetune"] / "best" / "README.md")
    assert card.data.license == "apache-2.0"
    assert card.data.get("license_name") is None and card.data.get("extra_gated_fields") is None
    assert "**A sanity model.**" in card.text and "predictions on real faces mean nothing" in card.text


def copy_as_aff_wild2_model(model_dir: Path, destination: Path, **record) -> Path:
    """A copy of a model folder whose training record says it was trained on Aff-Wild2 (and `record`)."""
    shutil.copytree(model_dir, destination)
    info = read_json(destination / "training_info.json")
    (destination / "training_info.json").write_text(json.dumps({**info, "synthaffect": False, **record}))
    return destination


def test_an_aff_wild2_model_inherits_the_non_commercial_terms_and_is_gated(runs, tmp_path):
    model_dir = copy_as_aff_wild2_model(runs["finetune"] / "best", tmp_path / "affwild2")
    card = ModelCard.load(write_model_card(model_dir))
    data = card.data
    assert (data.license, data.license_name) == ("other", "aff-wild2-eula")
    assert data.license_link.startswith("https://ibug.doc.ic.ac.uk/")
    assert "non-commercial" in data.extra_gated_prompt
    assert "checkbox" in data.extra_gated_fields.values()
    assert data.datasets == ["aff-wild2"]
    assert "non-commercial academic research only" in card.text and "sanity model" not in card.text
    assert {result.dataset_name for result in data.eval_results} == {"Aff-Wild2"}
    # Another licence id replaces the licence, not the gate: the data's terms still hold.
    relicensed = model_card(model_dir, license="cc-by-nc-4.0").data
    assert relicensed.license == "cc-by-nc-4.0" and relicensed.get("license_name") is None
    assert relicensed.extra_gated_fields == data.extra_gated_fields


def test_base_model_is_the_recorded_hub_start_model_unless_given(runs, tmp_path):
    model_dir = copy_as_aff_wild2_model(runs["finetune"] / "best", tmp_path / "m", start_model_hub_id="org/face-mae")
    assert model_card(model_dir).data.base_model == "org/face-mae"
    card = model_card(model_dir, repo_id="org/face-mae-au", base_model="org/other")
    assert card.data.base_model == "org/other"
    assert card.data.model_name == "face-mae-au"
    assert 'AffectPipeline.from_pretrained("org/face-mae-au")' in card.text


def test_abaw_model_card_regenerates_the_same_card(runs, capsys):
    model_dir = runs["tmf"] / "final"
    written = (model_dir / "README.md").read_text()
    assert abaw(["model-card", str(model_dir)]) == 0
    assert capsys.readouterr().out.strip() == f"Wrote {model_dir / 'README.md'}"
    assert (model_dir / "README.md").read_text() == written


def test_abaw_model_card_of_a_folder_it_cannot_describe_is_one_line(runs, tmp_path, capsys):
    no_results = tmp_path / "no-results"
    shutil.copytree(runs["finetune"] / "final", no_results)
    (no_results / "eval_results.json").unlink()
    assert abaw(["model-card", str(no_results)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"abaw model-card: error: {no_results}: no eval_results.json (a card reports the validation results of a "
        "training stage)"
    )
    assert abaw(["model-card", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"abaw model-card: error: {tmp_path}: not a model folder (no config.json)"


def test_the_template_is_found_and_a_missing_one_is_one_line(runs, monkeypatch, capsys):
    assert template_path(cards.TEMPLATE_FILE).is_file() and template_path("dataset_card.md").is_file()
    monkeypatch.setattr(cards, "TEMPLATE_FILE", "missing_template.md")
    with pytest.raises(InputError, match="the card template missing_template.md is missing"):
        template_path(cards.TEMPLATE_FILE)
    assert abaw(["model-card", str(runs["finetune"] / "final")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("abaw model-card: error: the card template") and "\n" not in error


REPOSITORY = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_package():
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {
        ".".join(init.parent.relative_to(REPOSITORY).parts)
        for init in (REPOSITORY / "modeling_abaw").rglob("__init__.py")
    }
    assert listed == packages | {"modeling_abaw.model_cards", "modeling_abaw.inference.face_models"}


def test_an_installed_wheel_finds_the_template_and_the_face_detector(tmp_path):
    """The wheel carries model_cards/ as modeling_abaw/model_cards/, where the installed package finds it, and the
    bundled BlazeFace model, which the installed package loads."""
    source = tmp_path / "source"
    for name in ("modeling_abaw", "model_cards"):
        shutil.copytree(REPOSITORY / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPOSITORY / name, source / name)
    build = "from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; {build}", str(tmp_path / "dist")],
        cwd=source,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    site = tmp_path / "site"
    zipfile.ZipFile(tmp_path / "dist" / result.stdout.split()[-1]).extractall(site)
    find = "from modeling_abaw.hub.templates import template_path; print(template_path('model_card.md'))"
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", find], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == site / "modeling_abaw" / "model_cards" / "model_card.md"
    load = "from modeling_abaw.inference.blazeface import BlazeFaceDetector; print(BlazeFaceDetector().models_dir)"
    result = subprocess.run([sys.executable, "-c", load], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == site / "modeling_abaw" / "inference" / "face_models"
