"""`transformers.pipeline` runs AffectPipeline: a model folder with the custom pipeline gives the same per-frame table
through `pipeline(model=folder, trust_remote_code=True)` as AffectPipeline."""

import shutil

import pandas as pd
import pytest
from transformers import pipeline

from modeling_abaw.inference import AffectPipeline
from modeling_abaw.inference.transformers_pipeline import TASK, save_custom_pipeline


@pytest.fixture(scope="module")
def video(tiny_synthaffect):
    return tiny_synthaffect / "videos" / "synth_002.mp4"


def with_pipeline(model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    save_custom_pipeline(folder)
    return folder


@pytest.mark.parametrize("model_fixture", ["tiny_face_mae_affect_dir", "tiny_tmf_dir"])
def test_remote_code_pipeline_gives_the_affect_pipelines_table(model_fixture, request, video, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    folder = with_pipeline(request.getfixturevalue(model_fixture), tmp_path)
    analyse = pipeline(model=str(folder), trust_remote_code=True, device="cpu")
    assert analyse.task == TASK
    expected = AffectPipeline.from_pretrained(folder, device="cpu", dtype="float32")(video)
    pd.testing.assert_frame_equal(analyse(str(video)), expected, check_exact=False, atol=1e-5)
    # AffectPipeline's options are the pipeline's call keywords.
    unsmoothed = AffectPipeline.from_pretrained(folder, device="cpu", dtype="float32", smoothing="none")(video)
    pd.testing.assert_frame_equal(analyse(str(video), smoothing="none"), unsmoothed, check_exact=False, atol=1e-5)
    with pytest.raises(TypeError, match="unknown option"):
        analyse(str(video), smooth="none")


def test_registered_task_runs_a_folder_without_the_custom_pipeline(tiny_face_mae_affect_dir, video):
    analyse = pipeline(TASK, model=tiny_face_mae_affect_dir, device="cpu")  # no remote code involved
    assert type(analyse.model).__module__ == "modeling_abaw.modeling_face_mae"
    table = analyse(str(video), crop_batch_size=4)
    assert len(table) == 40 and table["has_face"].any()
