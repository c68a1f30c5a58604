"""TMF checkpoints are self-contained: the backbones `abaw extract-features` records (and TMF copies into
`config.backbones`) are canonical specs that `abaw predict` loads back as they are, from any working directory."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from modeling_abaw import TMFConfig, TMFForAffect
from modeling_abaw.cli import main
from modeling_abaw.features import FeatureCache
from modeling_abaw.inference import AffectPipeline

TINY_TMF = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, clip_length=8)


@pytest.fixture(scope="module")
def cache(tmp_path_factory, tiny_synthaffect, tiny_face_mae_affect_dir):
    """A logmel + FaceMAE cache extracted the way the demo does, with --visual given relative to the working
    directory (as `demo_output/finetune/best` was)."""
    work = tmp_path_factory.mktemp("training-directory")
    visual = Path(tiny_face_mae_affect_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(visual.parent)
        arguments = ["--data", str(tiny_synthaffect), "--visual", visual.name, "--audio", "logmel"]
        assert main(["extract-features", *arguments, "--output", str(work / "features"), "--device", "cpu"]) == 0
    return FeatureCache(work / "features")


def test_cache_records_canonical_backbones(cache, tiny_face_mae_affect_dir):
    index = json.loads((cache.path / "features.json").read_text())
    assert index["backbones"] == {"mae": {"model": tiny_face_mae_affect_dir}, "logmel": {"model": None}}
    assert Path(index["backbones"]["mae"]["model"]).is_absolute()


@pytest.mark.parametrize("used_modalities", [["mae"], ["mae", "logmel"]], ids=["vision-only", "audio-visual"])
def test_tmf_checkpoint_predicts_from_another_directory(
    cache, tiny_synthaffect, tmp_path, monkeypatch, capsys, used_modalities
):
    torch.manual_seed(0)
    config = TMFConfig(
        modalities=cache.modalities, used_modalities=used_modalities, backbones=cache.backbones, **TINY_TMF
    )
    TMFForAffect(config).save_pretrained(tmp_path / "runs" / "tmf")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    video = tiny_synthaffect / "videos" / "synth_000.mp4"
    # The model itself is given relative to the working directory: resolved against it.
    status = main(["predict", str(video), "--model", "../runs/tmf", "--output", "out", "--device", "cpu"])
    assert status == 0, capsys.readouterr().err
    table = pd.read_csv(elsewhere / "out" / "synth_000.csv")
    assert len(table) == 40 and not table[["valence", "arousal"]].isna().any(axis=None)

    pipeline = AffectPipeline.from_pretrained(tmp_path / "runs" / "tmf", device="cpu")
    assert sorted(pipeline.audio_extractors) == used_modalities[1:]
