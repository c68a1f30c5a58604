"""ONNX export of FaceMAEForAffect and TMFForAffect (`abaw export`), also used by the onnxruntime encoder path
(`inference.backends`).

The graphs take and give plain tensors, named as the package names them elsewhere:

- FaceMAEForAffect: input `pixel_values` (batch, 3, image_size, image_size), normalised as the folder's
  preprocessor_config.json says; outputs the `AffectOutput` fields of the model's tasks (`au_logits` (batch, 12),
  `expr_logits` (batch, 8), `va` (batch, 2), in `config.tasks` order) and `features` (batch, hidden_size), the pooled
  feature TMF fuses. The batch axis is dynamic.
- TMFForAffect: inputs the `ClipDataset` batch keys, one per modality of `config.used_modalities` (`mae`, `hubert`,
  ... (batch, K, size), float32), `<audio>_mask` per audio modality (batch, K), float32, 1 where the feature exists)
  and `attention_mask` (batch, K), int64, 1 for real frames); outputs per frame, as above. Batch and clip length K
  (up to `config.clip_length`) are dynamic.

The graphs come from torch.onnx's dynamo exporter (torch.export). The legacy TorchScript exporter was measured too:
it exports FaceMAEForAffect, but its graph ran 2x slower in onnxruntime (no fused attention), and its TMF graph gives
wrong outputs (its trace freezes torch's fused transformer-layer path and the clip length), so it is not used. int8
graphs quantise the MatMuls' weights with `onnxruntime.quantization.quantize_dynamic` (activations per batch, at run
time). Every export is checked by running it in onnxruntime beside torch (`verify_onnx`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..environment import missing_packages_message
from ..errors import InputError
from ..tasks import TASKS
from .backends import PROBABILITY_TOLERANCE, onnx_session, probabilities
from .pipeline import is_fusion_model

ONNX_DTYPES = ("float32", "int8")
ONNX_FILE = "model.onnx"
OPSET = 18
# The packages of the `onnx` extra, by module: the exporter needs onnx and onnxscript, running needs onnxruntime.
ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")
VERIFY_BATCH = 3


def missing_onnx_modules(modules: tuple[str, ...] = ONNX_MODULES) -> list[str]:
    return [name for name in modules if importlib.util.find_spec(name) is None]


def require_onnx(what: str, modules: tuple[str, ...] = ONNX_MODULES) -> None:
    """InputError naming the extra to install when a module of `modules` is missing."""
    missing = missing_onnx_modules(modules)
    if missing:
        raise InputError(missing_packages_message(missing, "onnx", what))


def output_names(config) -> list[str]:
    """The graph's outputs: each task's `AffectOutput` field, then the pooled or per-frame `features`."""
    return [TASKS[name].output_key for name in config.tasks] + ["features"]


def tmf_input_names(config) -> list[str]:
    return [*config.used_modalities, *(f"{name}_mask" for name in config.audio_modalities), "attention_mask"]


class FaceMAEGraph(nn.Module):
    """FaceMAEForAffect as the ONNX graph runs it: a tensor in, a tuple of tensors out (ONNX has no ModelOutput)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.names = model, output_names(model.config)

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(pixel_values=pixel_values)
        return tuple(outputs[name] for name in self.names)


class TMFGraph(nn.Module):
    """TMFForAffect with its nested keyword inputs (`features`, `modality_mask` dicts) as positional tensors, in
    `tmf_input_names` order."""

    def __init__(self, model):
        super().__init__()
        self.model, self.names = model, output_names(model.config)
        self.input_names = tmf_input_names(model.config)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch = dict(zip(self.input_names, inputs))
        config = self.model.config
        outputs = self.model(
            features={name: batch[name] for name in config.used_modalities},
            modality_mask={name: batch[f"{name}_mask"] for name in config.audio_modalities},
            attention_mask=batch["attention_mask"],
        )
        return tuple(outputs[name] for name in self.names)


def example_inputs(model, batch_size: int, clip_length: int | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded inputs of the model's graph: noise crops (normal, like normalised pixels) for FaceMAE; for TMF, noise
    features with a few absent audio frames and padded last frames, so the masks' paths are exercised."""
    generator = torch.Generator().manual_seed(seed)
    config = model.config
    if not is_fusion_model(model):
        size = config.image_size
        return {"pixel_values": torch.randn(batch_size, 3, size, size, generator=generator)}
    length = clip_length or config.clip_length
    inputs = {
        name: torch.randn(batch_size, length, config.modalities[name], generator=generator)
        for name in config.used_modalities
    }
    for name in config.audio_modalities:
        inputs[f"{name}_mask"] = (torch.rand(batch_size, length, generator=generator) > 0.2).float()
    attention_mask = torch.ones(batch_size, length, dtype=torch.int64)
    attention_mask[0, length - length // 4 :] = 0
    inputs["attention_mask"] = attention_mask
    return inputs


@contextlib.contextmanager
def quiet_exporter():
    """Silence the exporter's and the quantiser's chatter (progress lines, warnings about torchvision ops this
    model does not use, deprecations inside torch): the export is checked numerically instead."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript", "")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_onnx(model, path: str | os.PathLike, dtype: str = "float32") -> None:
    """Write the model's ONNX graph (float32, or int8 MatMul weights) to `path`, one self-contained file. The model
    must be float32 on the CPU; it is put in eval mode."""
    if dtype not in ONNX_DTYPES:
        raise InputError(f"ONNX dtype {dtype!r}: choose {' or '.join(ONNX_DTYPES)}")
    require_onnx("ONNX export", ("onnx", "onnxscript") + (("onnxruntime",) if dtype == "int8" else ()))
    model = model.eval()
    path = Path(path)
    with quiet_exporter():
        if is_fusion_model(model):
            graph = TMFGraph(model)
            inputs = example_inputs(model, batch_size=2)
            batch, clip = torch.export.Dim("batch"), torch.export.Dim("clip", max=model.config.clip_length)
            # The positional inputs are one varargs tuple: its shapes are given as one tuple too.
            dynamic_shapes = (tuple({0: batch, 1: clip} for _ in inputs),)
        else:
            graph = FaceMAEGraph(model)
            inputs = example_inputs(model, batch_size=2)
            dynamic_shapes = {"pixel_values": {0: torch.export.Dim("batch")}}
        target = path if dtype == "float32" else path.with_name(f".{path.name}.float32")
        try:
            torch.onnx.export(
                graph,
                tuple(inputs.values()),
                target,
                input_names=list(inputs),
                output_names=graph.names,
                dynamic_shapes=dynamic_shapes,
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
            if dtype == "int8":
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(target, path, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
        finally:
            if target != path:
                target.unlink(missing_ok=True)


def verify_onnx(model, session) -> float:
    """max |difference| of the task predictions between onnxruntime's `session` and torch float32 on seeded inputs
    of another batch size (and, for TMF, a shorter clip) than the export's, so the dynamic axes are exercised."""
    clip_length = max(1, min(7, model.config.clip_length - 1)) if is_fusion_model(model) else None
    inputs = example_inputs(model, VERIFY_BATCH, clip_length, seed=1)
    graph = TMFGraph(model) if is_fusion_model(model) else FaceMAEGraph(model)
    with torch.inference_mode():
        expected = dict(zip(graph.names, graph.eval()(*inputs.values())))
    arrays = session.run(None, {name: value.numpy() for name, value in inputs.items()})
    exported = dict(zip([output.name for output in session.get_outputs()], arrays))
    tasks = model.config.tasks
    return float(np.abs(probabilities(exported, tasks) - probabilities(expected, tasks)).max())


@dataclass
class ExportResult:
    path: Path
    inputs: list[str]
    outputs: list[str]
    max_delta: float


def refuse_existing(output: Path, overwrite: bool) -> None:
    if output.exists() and not overwrite:
        raise InputError(f"{output} already exists; pass --overwrite to replace it, or choose another --output")


def export_folder(model, output: str | os.PathLike, dtype: str = "float32", overwrite: bool = False) -> ExportResult:
    """`abaw export`: OUTPUT/model.onnx, the model's config.json and, for FaceMAE, its preprocessor_config.json (the
    image processor giving `pixel_values`), written whole or not at all. Refuses an existing OUTPUT unless
    `overwrite`, and an export whose predictions differ from torch's by more than PROBABILITY_TOLERANCE."""
    from ..io import atomic_directory
    from ..modeling_face_mae import face_image_processor

    require_onnx("abaw export")
    output = Path(output)
    refuse_existing(output, overwrite)
    model = model.to("cpu", torch.float32).eval()
    with atomic_directory(output) as folder:
        export_onnx(model, folder / ONNX_FILE, dtype)
        session = onnx_session(folder / ONNX_FILE)
        max_delta = verify_onnx(model, session)
        if not max_delta <= PROBABILITY_TOLERANCE:
            raise InputError(
                f"the {dtype} ONNX export's predictions differ from torch's by up to {max_delta:.3g} (tolerance "
                f"{PROBABILITY_TOLERANCE}); nothing was written"
            )
        model.config.save_pretrained(folder)
        if not is_fusion_model(model):
            face_image_processor(model.config).save_pretrained(folder)
        names = [entry.name for entry in session.get_inputs()], [entry.name for entry in session.get_outputs()]
    return ExportResult(output / ONNX_FILE, *names, max_delta)
