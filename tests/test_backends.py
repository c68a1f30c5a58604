"""The visual encoder's paths (`inference.backends`): int8 and onnxruntime stay near float32, `auto` picks a path
within the tolerance and caches its choice, bad combinations are one-line errors, and the pipeline runs int8.

The model is the tiny FaceMAE with heads of weights N(0, 0.5) instead of MAE's near-zero init, so probabilities
spread over (0, 1) rather than sit at 0.5 where every path agrees. Its 32-d features quantise more coarsely than a
ViT-B's: its int8 paths get INT8_TOLERANCE_TINY, measured at 0.002-0.004 (torch) and 0.013-0.025 (onnxruntime)
over seeds 0-2; `PROBABILITY_TOLERANCE` is what real models are held to (benchmarks/bench_encoder.py).
"""

import copy
import json

import numpy as np
import pytest
import torch
from conftest import TINY_FACE_MAE

from modeling_abaw import FaceMAEConfig, FaceMAEForAffect
from modeling_abaw.cli import main
from modeling_abaw.errors import InputError
from modeling_abaw.inference import AffectPipeline, backends
from modeling_abaw.inference.backends import (
    EncoderPath,
    Measurement,
    build_encoder,
    calibration_batch,
    candidate_paths,
    fastest_within_tolerance,
    probabilities,
    resolve_encoder,
)
from modeling_abaw.tasks import AU, EXPR, PROBABILITY_TOLERANCE, VA

CPU = torch.device("cpu")
INT8_TOLERANCE_TINY = 0.05
ONNX_FLOAT32_TOLERANCE = 1e-5
needs_onnxruntime = pytest.mark.skipif(not backends.onnxruntime_installed(), reason="needs the onnx extra")


def spread_model(seed=0):
    torch.manual_seed(seed)
    model = FaceMAEForAffect(FaceMAEConfig(**TINY_FACE_MAE)).eval()
    with torch.no_grad():
        for head in model.affect_heads.heads.values():
            head.weight.normal_(std=0.5)
    return model


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """This module's cache folder: the auto test reuses the exports of the tests before it (same model)."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(backends.CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def spread_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("spread-model")
    spread_model().save_pretrained(path)
    return path


@pytest.mark.parametrize(
    "path, tolerance",
    [
        (EncoderPath("torch", "int8"), INT8_TOLERANCE_TINY),
        pytest.param(EncoderPath("onnxruntime", "float32"), ONNX_FLOAT32_TOLERANCE, marks=needs_onnxruntime),
        pytest.param(EncoderPath("onnxruntime", "int8"), INT8_TOLERANCE_TINY, marks=needs_onnxruntime),
    ],
    ids=str,
)
def test_faster_paths_stay_near_float32(path, tolerance, cache):
    model = spread_model()
    pixel_values = calibration_batch(model.config, 8)
    with torch.inference_mode():
        expected = probabilities(model(pixel_values=pixel_values), model.config.tasks)
    assert expected.min() < 0.1 and expected.max() > 0.9  # the heads spread the probabilities
    encoder = build_encoder(copy.deepcopy(model), path, CPU)
    outputs = encoder(pixel_values)
    assert outputs.features.shape == (8, TINY_FACE_MAE["hidden_size"])
    np.testing.assert_allclose(probabilities(outputs, model.config.tasks), expected, rtol=0, atol=tolerance)


def test_auto_picks_a_path_within_tolerance_and_caches_it(cache, monkeypatch):
    model = spread_model()
    encoder = resolve_encoder(copy.deepcopy(model), CPU)
    (choice,) = json.loads((cache / backends.CHOICES_FILE).read_text()).values()
    assert [m["path"] for m in choice["measurements"]] == [str(p) for p in candidate_paths(CPU)]
    chosen = next(Measurement(**m) for m in choice["measurements"] if m["path"] == choice["chosen"])
    assert chosen.within_tolerance and str(encoder.path) == choice["chosen"]
    assert chosen.images_per_second == max(
        m["images_per_second"] for m in choice["measurements"] if m["max_delta"] <= PROBABILITY_TOLERANCE
    )
    assert "auto, measured" in encoder.description and choice["key"]["model"] == backends.model_fingerprint(model)

    # The same model again (a fresh copy, as another run would load it) takes the cached choice without measuring.
    monkeypatch.setattr(backends, "measure", lambda *args, **kwargs: pytest.fail("measured again"))
    again = resolve_encoder(copy.deepcopy(model), CPU)
    assert again.path == encoder.path and "auto, cached" in again.description


def test_the_fastest_path_within_tolerance_is_chosen():
    measurements = [
        Measurement("torch float32", 10.0, 0.0),
        Measurement("torch int8", 40.0, 0.05),  # fastest, but over the tolerance
        Measurement("onnxruntime float32", 20.0, 1e-6),
    ]
    paths = [EncoderPath.parse(m.path) for m in measurements]
    assert fastest_within_tolerance(measurements, paths).path == "onnxruntime float32"
    with pytest.raises(InputError, match="no encoder path is within"):
        fastest_within_tolerance(measurements, paths[1:2])


def test_candidates_follow_the_hardware_and_the_request(monkeypatch):
    monkeypatch.setattr(backends, "onnxruntime_installed", lambda: True)
    monkeypatch.setattr(backends, "native_bfloat16", lambda device: False)
    assert [str(p) for p in candidate_paths(CPU)] == [
        "torch float32",
        "torch int8",
        "onnxruntime float32",
        "onnxruntime int8",
    ]
    assert [str(p) for p in candidate_paths(CPU, "auto", "onnxruntime")] == ["onnxruntime float32", "onnxruntime int8"]
    # An explicit dtype runs torch unless onnxruntime is asked for: no measuring, no export.
    assert candidate_paths(CPU, "int8") == [EncoderPath("torch", "int8")]
    assert candidate_paths(CPU, torch.bfloat16) == [EncoderPath("torch", "bfloat16")]
    # A GPU runs torch bfloat16 where it has it, unmeasured.
    assert candidate_paths(torch.device("cuda")) == [EncoderPath("torch", "float32")]
    monkeypatch.setattr(backends, "native_bfloat16", lambda device: True)
    assert candidate_paths(torch.device("cuda")) == [EncoderPath("torch", "bfloat16")]
    assert EncoderPath("torch", "bfloat16") in candidate_paths(CPU)


@pytest.mark.parametrize(
    "device, dtype, backend, message",
    [
        ("cuda", "int8", "auto", "dtype int8 runs on the CPU only"),
        ("cpu", "bfloat16", "onnxruntime", "not bfloat16"),
        ("cuda", "float32", "onnxruntime", "on the CPU only"),
        ("cpu", "float16", "auto", "dtype 'float16': choose auto, float32, bfloat16, int8"),
    ],
)
def test_combinations_that_cannot_run_are_input_errors(device, dtype, backend, message, monkeypatch):
    monkeypatch.setattr(backends, "onnxruntime_installed", lambda: True)
    with pytest.raises(InputError, match=message):
        candidate_paths(torch.device(device), dtype, backend)


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    path = tmp_path / "face.png"
    Image.fromarray(np.full((48, 48, 3), 128, np.uint8)).save(path)
    return path


@pytest.mark.parametrize(
    "options, message",
    [
        (["--dtype", "bfloat16", "--backend", "onnxruntime"], "backend onnxruntime runs float32 or int8, not bfloat16"),
        (
            ["--backend", "onnxruntime", "--dtype", "float32"],
            "onnxruntime is not installed; --backend onnxruntime needs",
        ),
    ],
)
def test_bad_combinations_are_one_line_errors_of_abaw_predict(
    options, message, image, tiny_face_mae_affect_dir, tmp_path, capsys, monkeypatch
):
    if "float32" in options:
        monkeypatch.setattr(backends, "onnxruntime_installed", lambda: False)
    arguments = ["predict", str(image), "--model", tiny_face_mae_affect_dir, "--output", str(tmp_path / "out")]
    code = main([*arguments, "--device", "cpu", *options])
    stderr = capsys.readouterr().err
    assert code == 2
    assert f"abaw predict: error: {message}" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    "dtype, backend, tolerance",
    [
        ("int8", "auto", INT8_TOLERANCE_TINY),
        pytest.param("float32", "onnxruntime", ONNX_FLOAT32_TOLERANCE, marks=needs_onnxruntime),
    ],
)
def test_pipeline_on_a_video_stays_near_float32(dtype, backend, tolerance, spread_model_dir, tiny_synthaffect, cache):
    video = tiny_synthaffect / "videos" / "synth_002.mp4"
    columns = [*AU.labels, *EXPR.labels, *VA.labels]
    faster = AffectPipeline.from_pretrained(
        spread_model_dir, device="cpu", dtype=dtype, backend=backend, smoothing="none"
    )
    path = "torch int8" if dtype == "int8" else "onnxruntime float32"
    assert faster.backend_description == f"{path} on cpu" and faster.dtype == torch.float32
    float32 = AffectPipeline.from_pretrained(spread_model_dir, device="cpu", dtype="float32", smoothing="none")
    expected = float32(video)[columns].to_numpy()
    assert np.nanmax(expected) - np.nanmin(expected) > 0.5
    np.testing.assert_allclose(faster(video)[columns].to_numpy(), expected, rtol=0, atol=tolerance)
