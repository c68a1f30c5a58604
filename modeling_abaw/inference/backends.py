"""How the visual encoder runs: the paths `AffectPipeline` can run its FaceMAE encoder on, and `auto`, which measures
them on the machine it runs on and takes the fastest that stays within `PROBABILITY_TOLERANCE` of float32.

The encoder does nearly all of the pipeline's compute; the audio backbones and the fusion transformer are cheap and
stay torch float32. The paths (`EncoderPath`, `VisualEncoder`):

- torch float32: the reference every other path is measured against.
- torch bfloat16: fast where the hardware has bf16 matrix units (CUDA GPUs with bf16, CPUs with AMX or AVX512-BF16);
  elsewhere it is emulated and slower than float32, so `auto` tries it only where it is native.
- torch int8 (CPU): `torch.ao.quantization.quantize_dynamic` of the encoder's `nn.Linear` layers: int8 weights,
  activations quantised per batch as it runs (fbgemm/x86 kernels, which keep 7 of the activations' 8 bits to avoid
  overflow on CPUs without VNNI; qnnpack on ARM). The patch projection (a convolution), the layer norms, softmax and
  the heads stay float32. torch 2.13 marks `torch.ao.quantization` deprecated in favour of torchao; it
  still works, and where a later torch drops it this path is simply not offered.
- onnxruntime float32 / int8 (CPU, with the `onnx` extra): the model exported by `inference.export` (int8: its
  MatMul weights quantised by onnxruntime), run by onnxruntime's CPU provider. The export is cached (below), so only
  the first run pays for it.

What is fastest depends on the machine (and on its load). On a shared 2-core AMD EPYC with AVX-512 and AVX512-BF16
(benchmarks/bench_encoder.py, ViT-Base, random weights, batch 16, two runs at load 1-3.5), torch float32 ran 1.9-2.7
images/s; against it, torch bfloat16 1.9-2.6x, torch int8 1.5-2.3x, onnxruntime float32 0.7-1.1x and onnxruntime
int8 2.7-2.8x, all within 2e-5 of float32's probabilities. On Intel CPUs with AMX, torch bfloat16 is the fast one
(~3.7x). So on CPUs `auto` measures rather than assumes (on GPUs it is torch bfloat16 where supported, else
float32): `resolve_encoder` runs each candidate on a fixed batch of seeded noise crops (`CALIBRATION_BATCH` crops, a
warm-up, then timed rounds interleaved so a busy machine slows all alike, the best counting), drops those whose
predictions differ from torch float32's by more than PROBABILITY_TOLERANCE, and takes the one with the most images
per second. Noise is the harsher test: on the demo's trained model (96-d ViT) int8 differed by 0.016-0.023 on noise
but 0.004 (onnxruntime) to 0.012 (torch) on real face crops, so `auto` may turn down an int8 path that real crops
would allow (`--dtype int8` still runs it). The decision is cached in `cache_folder()/encoder_choices.json`, keyed
by what it depends on (CPU model, torch threads, torch and onnxruntime versions, the model's weights and config, the
candidates), so later runs build the chosen path at once; delete the file to measure again.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..environment import missing_packages_message
from ..errors import InputError
from ..tasks import PROBABILITY_TOLERANCE, TASKS

DTYPES = ("auto", "float32", "bfloat16", "int8")
BACKENDS = ("auto", "torch", "onnxruntime")
CALIBRATION_BATCH = 4
CALIBRATION_ROUNDS = 2
CALIBRATION_SECONDS = 1.0
CACHE_ENV = "MODELING_ABAW_CACHE"
CHOICES_FILE = "encoder_choices.json"


def cache_folder() -> Path:
    """Where the encoder decisions and ONNX exports are kept: $MODELING_ABAW_CACHE, else
    $XDG_CACHE_HOME/modeling_abaw (~/.cache/modeling_abaw)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "modeling_abaw"


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` runs bf16 matmuls in hardware: CUDA GPUs with bf16 support; CPUs with AMX (Intel Sapphire
    Rapids and later) or AVX512-BF16 (Intel Cooper Lake, AMD Zen 4 and later). Elsewhere bf16 is emulated."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    return any(
        getattr(torch.cpu, name, lambda: False)() for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    )


def int8_supported() -> bool:
    """torch has dynamic quantisation and a quantised engine for this CPU."""
    return hasattr(torch.ao, "quantization") and any(
        engine != "none" for engine in torch.backends.quantized.supported_engines
    )


def onnxruntime_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx", "onnxscript"))


@dataclass(frozen=True)
class EncoderPath:
    """One way to run the encoder: a backend (torch, onnxruntime) and the precision of its matmuls."""

    backend: str
    dtype: str

    def __str__(self) -> str:
        return f"{self.backend} {self.dtype}"

    @classmethod
    def parse(cls, text: str) -> EncoderPath:
        return cls(*text.split())


REFERENCE = EncoderPath("torch", "float32")


class VisualEncoder:
    """The encoder as the pipeline calls it: `encoder(pixel_values)` -> the model's outputs (each task's
    `AffectOutput` field and the pooled `features`), for a (batch, 3, size, size) float32 tensor of processed crops.

    Attributes:
        path: the path it runs.
        device: where it runs.
        dtype: the dtype it takes pixel values in: a torch model's own; float32 for int8 and onnxruntime.
        description: the path and how it was chosen, for a log line (`AffectPipeline.backend_description`).
    """

    path: EncoderPath
    device: torch.device
    dtype: torch.dtype
    description: str

    def __call__(self, pixel_values: torch.Tensor):
        raise NotImplementedError


class TorchEncoder(VisualEncoder):
    """A FaceMAEForAffect already in its path's form (on its device, cast or quantised)."""

    def __init__(self, model, path: EncoderPath):
        self.model, self.path = model.eval(), path
        parameter = next(model.parameters())
        # A quantised model keeps float32 parameters (its layer norms) and takes float32 inputs.
        self.device, self.dtype = parameter.device, parameter.dtype
        self.description = f"{path} on {self.device}"

    @torch.inference_mode()
    def __call__(self, pixel_values: torch.Tensor):
        return self.model(pixel_values=pixel_values.to(self.device, self.dtype))


class OnnxRuntimeEncoder(VisualEncoder):
    """An exported FaceMAEForAffect (`inference.export`) in an onnxruntime CPU session."""

    def __init__(self, onnx_file: str | os.PathLike, path: EncoderPath):
        from ..affect_heads import AffectOutput

        self.output_class = AffectOutput
        self.session, self.path = onnx_session(onnx_file), path
        self.names = [output.name for output in self.session.get_outputs()]
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self.description = f"{path} on cpu"

    def __call__(self, pixel_values: torch.Tensor):
        arrays = self.session.run(None, {"pixel_values": pixel_values.to("cpu", torch.float32).numpy()})
        return self.output_class(**{name: torch.from_numpy(array) for name, array in zip(self.names, arrays)})


def onnx_session(path: str | os.PathLike):
    """An onnxruntime CPU session of `path` on as many threads as torch uses, so paths compare on equal terms.

    Its threads sleep between runs instead of spinning: spinning threads take the CPU from whatever runs next (the
    pipeline's decoding and face detection; in a calibration, the torch paths, measured at half their speed)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: onnxruntime warns about initialisers it folds
    return onnxruntime.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def probabilities(outputs, tasks) -> np.ndarray:
    """The task predictions of a batch as one (..., C) float32 array: AU and expression probabilities, VA values."""
    columns = [TASKS[name].predictions(torch.as_tensor(outputs[TASKS[name].output_key]).float()) for name in tasks]
    return torch.cat(columns, dim=-1).detach().cpu().numpy()


def quantize_linear_layers(model):
    """`model` with every nn.Linear of its encoder (`model.vit`) replaced in place by torch's dynamically quantised
    int8 one. The heads stay float32: they cost nothing, and quantising them too adds to the error (measured on the
    demo's trained model: 0.009 instead of 0.0076 max |diff| on real crops)."""
    with warnings.catch_warnings():
        # torch 2.13 deprecates torch.ao.quantization (for torchao) at every call; its kernels are unchanged.
        warnings.simplefilter("ignore")
        torch.ao.quantization.quantize_dynamic(model.vit, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return model


def model_fingerprint(model) -> str:
    """sha256 of the model's config and weights: the identity an ONNX export and a decision are cached under."""
    digest = hashlib.sha256(model.config.to_json_string().encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def onnx_cache_file(fingerprint: str, dtype: str) -> Path:
    """Where the cache keeps a model's ONNX export in `dtype` (`model_fingerprint`)."""
    from .export import ONNX_FILE

    name = ONNX_FILE if dtype == "float32" else ONNX_FILE.replace(".onnx", f".{dtype}.onnx")
    return cache_folder() / "onnx" / fingerprint / name


def onnx_file(model, dtype: str, fingerprint: str | None = None) -> Path:
    """The model's ONNX export in `dtype`, from the cache or exported into it (as float32 on the CPU)."""
    from .export import export_onnx

    path = onnx_cache_file(fingerprint or model_fingerprint(model), dtype)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            export_onnx(model.to("cpu", torch.float32), partial, dtype)
            partial.replace(path)  # whole or absent: a concurrent run may export the same file
        finally:
            partial.unlink(missing_ok=True)
    return path


def candidate_paths(
    device: torch.device, dtype: str | torch.dtype = "auto", backend: str = "auto"
) -> list[EncoderPath]:
    """The paths `resolve_encoder` chooses from; InputError for a combination that cannot run.

    An explicit dtype with backend auto means torch: measuring, and exporting for onnxruntime, is what `auto` dtype
    asks for. On a CPU, dtype auto measures float32, bfloat16 where native, int8, and onnxruntime's float32 and int8
    where it is installed (all of one backend where the backend is given). On a GPU it is bfloat16 where supported,
    else float32, unmeasured: bf16 always wins there, and a ZeroGPU Space may not run CUDA outside its GPU calls."""
    if isinstance(dtype, torch.dtype):
        # A torch dtype (a model's own, as transformers loaded it) runs torch in it, float16 included.
        if not dtype.is_floating_point or backend == "onnxruntime":
            raise InputError(f"dtype {dtype}: choose {', '.join(DTYPES)}")
        return [EncoderPath("torch", str(dtype).removeprefix("torch."))]
    if dtype not in DTYPES:
        raise InputError(f"dtype {dtype!r}: choose {', '.join(DTYPES)}")
    if backend not in BACKENDS:
        raise InputError(f"backend {backend!r}: choose {', '.join(BACKENDS)}")
    if backend == "onnxruntime":
        if not onnxruntime_installed():
            raise InputError(missing_packages_message(["onnxruntime"], "onnx", "--backend onnxruntime"))
        if device.type != "cpu":
            raise InputError(f"backend onnxruntime runs on the CPU only, not {device}: add --device cpu")
        if dtype == "bfloat16":
            raise InputError("backend onnxruntime runs float32 or int8, not bfloat16 (a torch path: --backend torch)")
    if dtype == "int8":
        if device.type != "cpu":
            raise InputError(f"dtype int8 runs on the CPU only (dynamic quantisation), not {device}: add --device cpu")
        if backend != "onnxruntime" and not int8_supported():
            raise InputError("dtype int8: this torch build has no quantised CPU engine (fbgemm, x86 or qnnpack)")
    if dtype != "auto":
        return [EncoderPath("onnxruntime" if backend == "onnxruntime" else "torch", dtype)]
    if device.type != "cpu":
        return [EncoderPath("torch", "bfloat16" if native_bfloat16(device) else "float32")]
    paths = []
    if backend in ("auto", "torch"):
        paths.append(REFERENCE)
        if native_bfloat16(device):
            paths.append(EncoderPath("torch", "bfloat16"))
        if int8_supported():
            paths.append(EncoderPath("torch", "int8"))
    if backend in ("auto", "onnxruntime") and onnxruntime_installed():
        paths += [EncoderPath("onnxruntime", "float32"), EncoderPath("onnxruntime", "int8")]
    return paths


def build_encoder(model, path: EncoderPath, device: torch.device, fingerprint: str | None = None) -> VisualEncoder:
    """The encoder of `path`. Torch paths convert `model` itself (moved, cast or quantised in place, as
    `nn.Module.to` does); onnxruntime paths leave it as it is."""
    if path.backend == "onnxruntime":
        try:
            return OnnxRuntimeEncoder(onnx_file(model, path.dtype, fingerprint), path)
        except InputError:
            raise
        except Exception as error:  # an exporter or onnxruntime failure, named rather than dumped
            raise InputError(f"{path}: the ONNX export failed ({type(error).__name__}: {error})") from error
    if path.dtype == "int8":
        return TorchEncoder(quantize_linear_layers(model.to("cpu", torch.float32)), path)
    return TorchEncoder(model.to(device, getattr(torch, path.dtype)), path)


@dataclass
class Measurement:
    """One path on the calibration batch: throughput and its largest prediction difference from torch float32."""

    path: str
    images_per_second: float
    max_delta: float

    @property
    def within_tolerance(self) -> bool:
        return self.max_delta <= PROBABILITY_TOLERANCE


def calibration_batch(config, batch_size: int = CALIBRATION_BATCH) -> torch.Tensor:
    """Seeded noise crops at the model's size (normal, like normalised pixels): the same batch on every run."""
    size = config.image_size
    return torch.randn(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0))


def measure(
    encoders: dict[EncoderPath, VisualEncoder],
    pixel_values: torch.Tensor,
    tasks,
    rounds: int = CALIBRATION_ROUNDS,
    seconds: float = CALIBRATION_SECONDS,
) -> list[Measurement]:
    """Time every encoder on `pixel_values` and compare its predictions with the reference's (`REFERENCE`, which
    must be among them): a warm-up, then interleaved timed rounds, at least `rounds` and until `seconds` have passed
    (a small model's runs take milliseconds, and a few of them are mostly noise); each path's best round counts."""
    outputs, times = {}, {path: [] for path in encoders}
    for path, encoder in encoders.items():
        outputs[path] = probabilities(encoder(pixel_values), tasks)
    start = time.perf_counter()
    while len(times[REFERENCE]) < rounds or time.perf_counter() - start < seconds:
        for path, encoder in encoders.items():
            begin = time.perf_counter()
            probabilities(encoder(pixel_values), tasks)
            times[path].append(time.perf_counter() - begin)
    reference = outputs[REFERENCE]
    return [
        Measurement(str(path), len(pixel_values) / min(times[path]), float(np.abs(outputs[path] - reference).max()))
        for path in encoders
    ]


def fastest_within_tolerance(measurements: list[Measurement], paths: list[EncoderPath]) -> Measurement:
    """The fastest measurement of `paths` within PROBABILITY_TOLERANCE; InputError when none is."""
    allowed = [m for m in measurements if m.within_tolerance and EncoderPath.parse(m.path) in paths]
    if not allowed:
        worst = ", ".join(f"{m.path} {m.max_delta:.3g}" for m in measurements if m.path != str(REFERENCE))
        raise InputError(f"no encoder path is within {PROBABILITY_TOLERANCE} of float32's predictions ({worst})")
    return max(allowed, key=lambda m: m.images_per_second)


def choice_key(model_fingerprint_: str, device: torch.device, paths: list[EncoderPath]) -> dict:
    """What a decision depends on: the machine, the software, the model and the candidates."""
    onnxruntime_version = None
    if any(path.backend == "onnxruntime" for path in paths):
        import onnxruntime

        onnxruntime_version = onnxruntime.__version__
    return {
        "machine": _cpu_model(),
        "device": device.type,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime_version,
        "model": model_fingerprint_,
        "candidates": [str(path) for path in paths],
        "tolerance": PROBABILITY_TOLERANCE,
    }


def _cpu_model() -> str:
    from ..machine import cpu_model

    return cpu_model()


def _key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def read_choices() -> dict:
    try:
        return json.loads((cache_folder() / CHOICES_FILE).read_text())
    except (OSError, ValueError):  # none yet, or unreadable: measure again
        return {}


def write_choice(key: dict, chosen: Measurement, measurements: list[Measurement]) -> None:
    from ..io import write_text

    choices = read_choices()
    choices[_key_digest(key)] = {
        "chosen": chosen.path,
        "key": key,
        "measurements": [asdict(m) for m in measurements],
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    try:
        write_text(cache_folder() / CHOICES_FILE, json.dumps(choices, indent=1) + "\n")
    except OSError as error:  # a read-only home: the choice just is not remembered
        warnings.warn(f"could not cache the encoder choice in {cache_folder()}: {error}", stacklevel=3)


def resolve_encoder(
    model, device: torch.device, dtype: str | torch.dtype = "auto", backend: str = "auto"
) -> VisualEncoder:
    """The encoder for a FaceMAEForAffect on `device`: the one path asked for, or (dtype "auto") the fastest
    candidate within PROBABILITY_TOLERANCE of float32 on this machine, measured once and cached (module docstring)."""
    paths = candidate_paths(device, dtype, backend)
    if len(paths) == 1:
        return build_encoder(model, paths[0], device)
    model = model.to(device, torch.float32)
    fingerprint = model_fingerprint(model)
    key = choice_key(fingerprint, device, paths)
    cached = read_choices().get(_key_digest(key))
    if cached:
        encoder = build_encoder(model, EncoderPath.parse(cached["chosen"]), device, fingerprint)
        chosen = next(Measurement(**m) for m in cached["measurements"] if m["path"] == cached["chosen"])
        reference = next(Measurement(**m) for m in cached["measurements"] if m["path"] == str(REFERENCE))
        encoder.description += _auto_note(chosen, reference, len(paths), "cached")
        return encoder
    print(
        f"modeling_abaw: measuring {len(paths)} encoder paths ({', '.join(map(str, paths))}) on this machine, once: "
        f"the choice is cached in {cache_folder()}",
        file=sys.stderr,
    )
    # torch float32 runs as the reference whether or not it is a candidate (backend onnxruntime), on the model
    # itself; torch candidates run beside it, on copies.
    encoders = {REFERENCE: TorchEncoder(model, REFERENCE)}
    for path in paths:
        if path == REFERENCE:
            continue
        try:
            source = model if path.backend == "onnxruntime" else copy.deepcopy(model)
            encoders[path] = build_encoder(source, path, device, fingerprint)
        except InputError as error:
            print(f"modeling_abaw: {path} left out: {error}", file=sys.stderr)
    measurements = measure(encoders, calibration_batch(model.config), model.config.tasks)
    chosen = fastest_within_tolerance(measurements, paths)
    write_choice(key, chosen, measurements)
    path = EncoderPath.parse(chosen.path)
    # The chosen torch path is rebuilt from the model itself, so no copy stays in memory beside it; the exports of
    # the paths not chosen leave the cache.
    encoder = encoders[path] if path.backend == "onnxruntime" else build_encoder(model, path, device)
    encoders.clear()
    for other in paths:
        if other.backend == "onnxruntime" and other != path:
            onnx_cache_file(fingerprint, other.dtype).unlink(missing_ok=True)
    encoder.description += _auto_note(chosen, measurements[0], len(paths), "measured")
    return encoder


def _auto_note(chosen: Measurement, reference: Measurement, num_paths: int, how: str) -> str:
    return (
        f" (auto, {how}: fastest of {num_paths} paths within {PROBABILITY_TOLERANCE} of float32's predictions; "
        f"{chosen.images_per_second / reference.images_per_second:.1f}x float32's throughput, max |diff| "
        f"{chosen.max_delta:.1g})"
    )
