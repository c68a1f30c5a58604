"""The Gradio Space (spaces/app.py) served on 127.0.0.1 and called through gradio_client, as a user of its API would:
the analysis of a SynthAffect clip and of an image, the CSV against `abaw predict`'s, bad inputs, model choice."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import expected_table_columns
from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """spaces/app.py as a module (it is a script of the Space, not part of the package), its cache in a tmp dir."""
    spec = importlib.util.spec_from_file_location("space_app", ROOT / "spaces" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    cache = tmp_path_factory.mktemp("space-cache")
    module.EXAMPLES_DIR, module.RESULTS_DIR = cache / "examples", cache / "results"
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def server(app, tiny_face_mae_affect_dir):
    """The app serving the tiny model, and a client of it."""
    demo = app.build_demo([tiny_face_mae_affect_dir])
    demo.queue(max_size=app.QUEUE_MAX_SIZE).launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo, Client(demo.local_url, verbose=False)
    demo.close()


@pytest.fixture(scope="module")
def clip(tiny_synthaffect):
    return tiny_synthaffect / "videos" / "synth_000.mp4"


@pytest.fixture(scope="module")
def pipeline(tiny_face_mae_affect_dir):
    from modeling_abaw.inference import AffectPipeline

    return AffectPipeline.from_pretrained(tiny_face_mae_affect_dir, landmarks=True)  # as `abaw predict --landmarks`


def analyze(server, media, model, api_name="/analyze"):
    """The endpoint's outputs (table as a DataFrame, figure path, CSV path) and the warnings the page showed."""
    _, client = server
    job = client.submit(handle_file(str(media)), model, api_name=api_name)
    table, figure, csv_file, _slider = job.result(timeout=120)
    warnings = []
    while not job.communicator.updates.empty():  # the status updates the client received, warnings among them
        update = job.communicator.updates.get_nowait()
        if getattr(update, "log", None):
            warnings.append(update.log)
    return pd.DataFrame(table["data"], columns=table["headers"]), Path(figure), Path(csv_file), warnings


def predict_csv(pipeline, path, folder):
    """What `abaw predict` writes for `path`: the pipeline's table through the shared CSV writer."""
    from modeling_abaw.inference.tables import write_csv

    target = folder / f"{Path(path).stem}.csv"
    write_csv(pipeline(path), target)
    return target


@pytest.mark.smoke
def test_video_through_the_client_matches_abaw_predict(server, clip, pipeline, tiny_face_mae_affect_dir, tmp_path):
    table, figure, csv_file, warnings = analyze(server, clip, tiny_face_mae_affect_dir)
    num_frames = len(pipeline(clip))
    assert num_frames == 40
    assert list(table.columns) == expected_table_columns(landmarks=True)
    assert len(table) == num_frames and table["frame"].tolist() == list(range(1, num_frames + 1))
    assert table["has_face"].sum() > 0
    assert csv_file.read_text() == predict_csv(pipeline, clip, tmp_path).read_text()
    pd.testing.assert_frame_equal(table, pd.read_csv(csv_file), check_dtype=False)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert warnings == []


def test_image_through_the_client(server, clip, pipeline, tiny_face_mae_affect_dir, tmp_path):
    from PIL import Image

    from modeling_abaw.media import open_media

    image = tmp_path / "face.png"
    Image.fromarray(next(open_media(clip).frames()).image).save(image)
    for api_name in ("/analyze", "/analyze_image"):
        table, figure, csv_file, _ = analyze(server, image, tiny_face_mae_affect_dir, api_name)
        assert list(table.columns) == expected_table_columns(landmarks=True)
        assert len(table) == 1 and table["has_face"].tolist() == [1]
        assert csv_file.read_text() == predict_csv(pipeline, image, tmp_path).read_text()
        assert figure.read_bytes()[:4] == b"\x89PNG"


def faceless_video(path: Path, num_frames: int = 12) -> Path:
    from modeling_abaw.data.synth.writer import write_mp4

    with write_mp4(path, 64, 48, 10, np.zeros(1600, np.float32), 16000) as video:
        for index in range(num_frames):
            video.write(np.full((48, 64, 3), 40 + 10 * index, np.uint8))
    return path


def test_bad_inputs_give_messages_and_the_app_keeps_serving(server, clip, tiny_face_mae_affect_dir, tmp_path):
    from gradio_client.exceptions import AppError

    not_media = tmp_path / "notes.txt"
    not_media.write_text("not a video")
    with pytest.raises(AppError, match=r"notes\.txt: not a readable image or video") as error:
        analyze(server, not_media, tiny_face_mae_affect_dir)
    assert str(tmp_path) not in str(error.value)  # the server's paths stay on the server

    table, _, _, warnings = analyze(server, faceless_video(tmp_path / "empty_room.mp4"), tiny_face_mae_affect_dir)
    assert len(table) == 12 and table["has_face"].sum() == 0 and table["AU1"].isna().all()
    assert [(message, level) for message, level in warnings if "no face found" in message] == [
        ("empty_room.mp4: no face found in its 12 frame(s); predictions are empty", "warning")
    ]

    table, *_ = analyze(server, clip, tiny_face_mae_affect_dir)  # still serving after the failures
    assert len(table) == 40


def test_over_long_video_is_refused(server, app, clip, tiny_face_mae_affect_dir, monkeypatch):
    from gradio_client.exceptions import AppError

    monkeypatch.setattr(app, "MAX_VIDEO_SECONDS", 0.5)  # the clip lasts 40 frames at 30 fps, 1.3 s
    with pytest.raises(AppError, match=r"synth_000\.mp4 lasts 1 s; this Space analyses videos up to 0\.5 s"):
        analyze(server, clip, tiny_face_mae_affect_dir)


def test_live_frame_finds_the_face_and_predicts(server, app, clip, tiny_face_mae_affect_dir):
    from modeling_abaw.media import open_media

    frame = next(open_media(clip).frames()).image
    shown, text = app.live_frame(frame, tiny_face_mae_affect_dir)
    assert shown.shape == frame.shape and not np.array_equal(shown, frame)  # the face's box is drawn
    assert [line.split()[0] for line in text.split("\n\n")] == ["**AU**", "**EXPR**", "**VA**"]
    assert app.live_frame(np.zeros_like(frame), tiny_face_mae_affect_dir)[1] == "No face in view."


def test_model_references_from_abaw_model(app, tmp_path, monkeypatch):
    assert app.model_references(" org/a, ./b ,, ") == ["org/a", "./b"]
    monkeypatch.setattr(app, "DEMO_MODELS", (tmp_path / "finetune" / "best", tmp_path / "tmf" / "best"))
    assert app.model_references(None) == app.model_references("") == []
    (tmp_path / "finetune" / "best").mkdir(parents=True)
    assert app.model_references(None) == [str(tmp_path / "finetune" / "best")]


def test_several_models_become_a_dropdown_and_the_page_says_what_they_were_trained_on(
    app, tiny_face_mae_affect_dir, tmp_path
):
    synth_model = tmp_path / "synth-model"
    shutil.copytree(tiny_face_mae_affect_dir, synth_model)
    (synth_model / "training_info.json").write_text(json.dumps({"stage": "finetune", "synthaffect": True}))
    demo = app.build_demo([tiny_face_mae_affect_dir, str(synth_model)])
    components = {block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    assert [choice for choice, _ in components["model-choice"].choices] == [tiny_face_mae_affect_dir, str(synth_model)]
    assert components["model-choice"].interactive
    assert "no training record" in components["model-info"].value

    description = app.load_models([str(synth_model)])[str(synth_model)].description
    assert "Trained on SynthAffect" in description and "Its predictions on real faces mean nothing" in description


def test_a_model_that_cannot_load_is_one_startup_message(app, tmp_path, monkeypatch, capsys):
    from modeling_abaw.errors import InputError

    with pytest.raises(InputError, match=r"model 'not a repo id!': no such folder, and not a Hugging Face Hub repo id"):
        app.build_demo(["not a repo id!"])
    monkeypatch.setenv("ABAW_MODEL", "not a repo id!")
    with pytest.raises(SystemExit, match=r"^spaces/app\.py: error: model 'not a repo id!': no such folder"):
        app.main()
    monkeypatch.delenv("ABAW_MODEL")
    monkeypatch.setattr(app, "DEMO_MODELS", (tmp_path / "missing",))
    with pytest.raises(SystemExit, match=r"no model to load: set ABAW_MODEL .* or run `make demo`"):
        app.main()


def test_examples_are_a_synthaffect_clip_and_an_image(app):
    from modeling_abaw.media import open_media

    clip, image = app.make_examples(app.EXAMPLES_DIR)
    assert open_media(clip).num_frames == 90 and open_media(image).is_image
    assert app.make_examples(app.EXAMPLES_DIR) == (clip, image)  # generated once


def test_face_crop_of_a_chosen_frame(server, app, clip, pipeline, tiny_face_mae_affect_dir):
    table = pipeline(clip)
    face_frame = int(table.loc[table["has_face"] == 1, "frame"].iloc[0])
    crop = app.face_crop(face_frame, (str(clip), table), tiny_face_mae_affect_dir)
    assert crop.shape == (pipeline.image_size, pipeline.image_size, 3)
    assert app.face_crop(face_frame, None, tiny_face_mae_affect_dir) is None  # nothing analysed yet
