"""Throughput and accuracy of each way the visual encoder can run (`modeling_abaw.inference.backends`), and what
`auto` picks on this machine.

    python benchmarks/bench_encoder.py                                # ViT-Base, random weights, batch 16 (~4 min)
    python benchmarks/bench_encoder.py --model PATH --crops DIR       # a trained checkpoint on real face crops

Paths: torch float32 (the reference), torch bfloat16 (marked emulated where the CPU has neither AMX nor
AVX512-BF16), torch int8 (dynamic quantisation of the linear layers), onnxruntime float32 and int8 (exported to a
temporary folder, as the pipeline's cache would hold them). Each runs the same fixed batch: seeded noise crops, or
the first `--batch-size` images of `--crops` (e.g. a SynthAffect or Aff-Wild2 cropped_aligned/<video> folder); a
warm-up, then `--rounds` interleaved timed rounds, the best counting, so all paths see the same machine load in
one run. max |diff| is the largest difference of a task prediction (AU and expression probabilities, VA values)
from torch float32's on that batch: random weights put every probability near 0.5, where differences are small,
so the figure for a trained checkpoint is the one that counts. Last, `auto` is resolved as the pipeline resolves
it (its own short calibration, into a temporary cache), which shows the path a user of this machine gets. Other
processes slow the timings down; the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path

from modeling_abaw.machine import cpu_model
from modeling_abaw.presets import FACE_MAE_PRESETS, face_mae_preset


def load_model(args):
    import torch

    from modeling_abaw import FaceMAEConfig, FaceMAEForAffect
    from modeling_abaw.inference import load_checkpoint

    if args.model:
        return load_checkpoint(args.model, (FaceMAEForAffect,), "model").to("cpu", torch.float32).eval()
    torch.manual_seed(0)
    return FaceMAEForAffect(FaceMAEConfig(**face_mae_preset(args.model_size))).eval()


def batch(model, args):
    from modeling_abaw.inference.backends import calibration_batch
    from modeling_abaw.media import IMAGE_EXTENSIONS, read_image
    from modeling_abaw.modeling_face_mae import face_image_processor

    if not args.crops:
        return calibration_batch(model.config, args.batch_size), "seeded noise crops"
    files = sorted(path for path in args.crops.iterdir() if path.suffix.lower() in IMAGE_EXTENSIONS)[: args.batch_size]
    if len(files) < args.batch_size:
        sys.exit(f"{args.crops}: {len(files)} images, fewer than --batch-size {args.batch_size}")
    images = [read_image(path) for path in files]
    pixel_values = face_image_processor(model.config)(images=images, return_tensors="pt")["pixel_values"]
    return pixel_values, f"{len(files)} face crops of {args.crops}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a FaceMAEForAffect checkpoint (default: random weights of --model-size)")
    parser.add_argument("--model-size", choices=FACE_MAE_PRESETS, default="vit-base")
    parser.add_argument("--crops", type=Path, help="folder of face crop images for the batch (default: noise)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds after the warm-up (the best counts)")
    parser.add_argument("--no-auto", action="store_true", help="skip resolving auto (its calibration takes ~1 min)")
    args = parser.parse_args()

    import torch

    from modeling_abaw.inference import backends
    from modeling_abaw.inference.backends import REFERENCE, EncoderPath, OnnxRuntimeEncoder, TorchEncoder
    from modeling_abaw.tasks import PROBABILITY_TOLERANCE

    cpu = torch.device("cpu")
    model = load_model(args)
    pixel_values, source = batch(model, args)
    flags = [name for name in ("amx_tile", "avx512_bf16", "avx512", "vnni", "avx2") if _cpu_flag(name)]
    onnxruntime = None
    if backends.onnxruntime_installed():
        import onnxruntime
    config = model.config
    print(
        f"{cpu_model()} ({', '.join(flags)}), {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"quantised engine {torch.backends.quantized.engine}, onnxruntime "
        f"{onnxruntime.__version__ if onnxruntime else 'not installed'}; load average "
        f"{os.getloadavg()[0]:.1f}\n{args.model or f'{args.model_size} (random weights)'}: {config.hidden_size}-d, "
        f"{config.num_hidden_layers} layers, {config.image_size}x{config.image_size} crops; batch: {source}\n"
    )
    native = backends.native_bfloat16(cpu)
    encoders = {
        REFERENCE: TorchEncoder(model, REFERENCE),
        EncoderPath("torch", "bfloat16"): TorchEncoder(
            copy.deepcopy(model).to(torch.bfloat16), EncoderPath("torch", "bfloat16")
        ),
    }
    if backends.int8_supported():
        quantized = backends.quantize_linear_layers(copy.deepcopy(model))
        encoders[EncoderPath("torch", "int8")] = TorchEncoder(quantized, EncoderPath("torch", "int8"))
    with tempfile.TemporaryDirectory(prefix="bench-encoder-") as folder:
        if onnxruntime:
            from modeling_abaw.inference.export import export_onnx

            for dtype in ("float32", "int8"):
                path = Path(folder) / f"model.{dtype}.onnx"
                export_onnx(model, path, dtype)
                encoders[EncoderPath("onnxruntime", dtype)] = OnnxRuntimeEncoder(
                    path, EncoderPath("onnxruntime", dtype)
                )
        measurements = backends.measure(encoders, pixel_values, config.tasks, rounds=args.rounds, seconds=0)
        encoders.clear()
    reference = measurements[0]
    print(
        f"| path | images/s | vs float32 | max abs diff of a prediction from float32's (tolerance "
        f"{PROBABILITY_TOLERANCE}) |"
    )
    print("|---|---|---|---|")
    for m in measurements:
        note = " (emulated: no AMX or AVX512-BF16)" if m.path == "torch bfloat16" and not native else ""
        print(
            f"| {m.path}{note} | {m.images_per_second:.2f} | "
            f"{m.images_per_second / reference.images_per_second:.2f}x | "
            f"{m.max_delta:.2g}{'' if m.within_tolerance else ' (over)'} |"
        )
    print(f"\nload average {os.getloadavg()[0]:.1f}")
    if not args.no_auto:
        with tempfile.TemporaryDirectory(prefix="bench-encoder-cache-") as cache:
            os.environ[backends.CACHE_ENV] = cache
            print(f"auto picks: {backends.resolve_encoder(model, cpu).description}", flush=True)


def _cpu_flag(name: str) -> bool:
    import torch

    return getattr(torch.cpu, f"_is_{name}_supported", lambda: False)()


if __name__ == "__main__":
    main()
