"""`abaw export`: ONNX folders of FaceMAEForAffect and TMFForAffect that onnxruntime runs as torch does, with dynamic
batch (and clip length), written whole, never over an earlier export unless asked; failures are one-line errors."""

import json

import numpy as np
import pytest
import torch

from modeling_abaw import FaceMAEForAffect, TMFForAffect
from modeling_abaw.cli import main
from modeling_abaw.inference import export
from modeling_abaw.inference.backends import onnx_session
from modeling_abaw.modeling_face_mae import face_image_processor

pytest.importorskip("onnxruntime", reason="needs the onnx extra")
pytest.importorskip("onnxscript", reason="needs the onnx extra")

# Float32 graphs compute what torch computes, in another order.
LOGIT_TOLERANCE = 1e-4


def run_export(model_dir, output, *options):
    return main(["export", "--model", str(model_dir), "--format", "onnx", "--output", str(output), *options])


def test_face_mae_export_round_trip(tiny_face_mae_affect_dir, tmp_path, capsys):
    output = tmp_path / "onnx"
    assert run_export(tiny_face_mae_affect_dir, output) == 0
    assert "abaw export: wrote" in capsys.readouterr().err
    assert {"model.onnx", "config.json", "preprocessor_config.json"} <= {path.name for path in output.iterdir()}
    assert json.loads((output / "config.json").read_text())["model_type"] == "face_mae"

    model = FaceMAEForAffect.from_pretrained(tiny_face_mae_affect_dir).eval()
    processor = json.loads(face_image_processor(model.config).to_json_string())
    assert processor == json.loads((output / "preprocessor_config.json").read_text())
    session = onnx_session(output / "model.onnx")
    assert [entry.name for entry in session.get_inputs()] == ["pixel_values"]
    assert [entry.name for entry in session.get_outputs()] == ["au_logits", "expr_logits", "va", "features"]
    pixel_values = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(3))  # not the export's batch
    with torch.inference_mode():
        expected = model(pixel_values=pixel_values)
    for entry, values in zip(session.get_outputs(), session.run(None, {"pixel_values": pixel_values.numpy()})):
        np.testing.assert_allclose(values, expected[entry.name].numpy(), rtol=0, atol=LOGIT_TOLERANCE)


def test_tmf_export_takes_any_batch_and_clip_length(tiny_tmf_dir, tmp_path):
    output = tmp_path / "tmf"
    assert run_export(tiny_tmf_dir, output) == 0
    assert "preprocessor_config.json" not in {path.name for path in output.iterdir()}
    model = TMFForAffect.from_pretrained(tiny_tmf_dir).eval()
    session = onnx_session(output / "model.onnx")
    names = ["mae", "hubert", "vggish", "hubert_mask", "vggish_mask", "attention_mask"]
    assert [entry.name for entry in session.get_inputs()] == names
    assert [entry.name for entry in session.get_outputs()] == ["expr_logits", "va", "features"]
    for batch_size, clip_length in [(1, 12), (3, 5)]:
        inputs = export.example_inputs(model, batch_size, clip_length, seed=batch_size)
        with torch.inference_mode():
            expected = model(
                features={name: inputs[name] for name in ("mae", "hubert", "vggish")},
                modality_mask={name: inputs[f"{name}_mask"] for name in ("hubert", "vggish")},
                attention_mask=inputs["attention_mask"],
            )
        arrays = session.run(None, {name: value.numpy() for name, value in inputs.items()})
        for entry, values in zip(session.get_outputs(), arrays):
            assert values.shape[:2] == (batch_size, clip_length)
            np.testing.assert_allclose(values, expected[entry.name].numpy(), rtol=0, atol=LOGIT_TOLERANCE)


def test_an_existing_folder_is_replaced_only_with_overwrite(tiny_face_mae_affect_dir, tmp_path, capsys):
    output = tmp_path / "onnx"
    output.mkdir()
    (output / "mine.txt").write_text("keep")
    assert run_export(tiny_face_mae_affect_dir, output) == 2
    assert capsys.readouterr().err.strip() == (
        f"abaw export: error: {output} already exists; pass --overwrite to replace it, or choose another --output"
    )
    assert (output / "mine.txt").exists()
    assert run_export(tiny_face_mae_affect_dir, output, "--overwrite", "--dtype", "int8") == 0
    assert not (output / "mine.txt").exists() and (output / "model.onnx").exists()


def test_an_export_outside_the_tolerance_writes_nothing(tiny_face_mae_affect_dir, tmp_path, capsys, monkeypatch):
    # A graph whose predictions are off: the folder being written holds its model.onnx when the check fails.
    monkeypatch.setattr(export, "export_onnx", lambda model, path, dtype: path.write_bytes(b"graph"))
    monkeypatch.setattr(export, "onnx_session", lambda path: None)
    monkeypatch.setattr(export, "verify_onnx", lambda model, session: 0.5)
    assert run_export(tiny_face_mae_affect_dir, tmp_path / "onnx") == 2
    stderr = capsys.readouterr().err
    assert (
        stderr.count("\n") == 1 and "differ from torch's by up to 0.5 (tolerance 0.01); nothing was written" in stderr
    )
    assert not (tmp_path / "onnx").exists() and list(tmp_path.iterdir()) == []


def test_without_the_onnx_extra_export_says_what_to_install(tiny_face_mae_affect_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export, "missing_onnx_modules", lambda modules=export.ONNX_MODULES: ["onnxruntime"])
    assert run_export(tiny_face_mae_affect_dir, tmp_path / "onnx") == 2
    assert capsys.readouterr().err.strip() == (
        "abaw export: error: onnxruntime is not installed; abaw export needs the onnx extra: "
        "pip install 'modeling-abaw[onnx]'"
    )
