"""Speed, memory and bf16 accuracy of `AffectPipeline` on generated SynthAffect videos.

    python benchmarks/bench_pipeline.py                         # ViT-Base throughput, ViT-Small memory (~5 min)
    python benchmarks/bench_pipeline.py --model-size vit-small  # quicker

Model sizes are the FaceMAE presets of `modeling_abaw.presets`.

Every measurement runs in a fresh subprocess, so its peak RSS (`ru_maxrss`) is its own. Each child loads the model
(random weights: speed does not depend on them), warms up on a short clip, then times

* the visual encoder alone: forward passes on ready-made (batch, 3, 224, 224) tensors, the ceiling the pipeline
  can reach, measured in the same process just before and just after the pipeline;
* the whole pipeline on a video: decode twice, detect and track, crop, preprocess, encode, post-process;

and reports the growth of the peak RSS during the pipeline call. Memory must not grow with the video's length: the
`--long-factor` times longer video must show the same growth, for the frame model and for a TMF model (the memory
runs' FaceMAE with a HuBERT-Base-sized audio model: audio decoded and featurised in chunks, clips fused as they are
encoded). The bf16 check runs the pipeline in float32 and in
bfloat16 (no smoothing, so per-frame errors are not averaged away) and reports both speeds and the largest
differences. Other processes on the machine slow the timings down; the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modeling_abaw.presets import FACE_MAE_PRESETS, face_mae_preset


def timed(function: Callable[[], Any]) -> tuple[Any, float, float]:
    """`function()`, its wall-clock seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def child(args: argparse.Namespace) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    import torch

    from modeling_abaw.inference import AffectPipeline

    pipeline = AffectPipeline.from_pretrained(
        args.model, device="cpu", dtype=args.dtype, batch_size=args.batch_size, smoothing=args.smoothing
    )
    if args.warmup:
        pipeline(args.warmup)
    size = pipeline.visual_model.config.image_size
    pixel_values = torch.randn(args.batch_size, 3, size, size, dtype=pipeline.dtype)
    batches = -(-args.encoder_frames // args.batch_size)

    @torch.inference_mode()
    def encoder(batches: int = batches) -> None:
        for _ in range(batches):
            pipeline.encoder(pixel_values)

    encoder(1)  # one-time set-up of this batch shape's kernels, not to be timed

    # The encoder is timed just before and just after the pipeline, so that both see the same machine load; CPU
    # time (all threads of this process) is also recorded, as it depends less on other processes sharing the CPU.
    _, encoder_wall, encoder_cpu = timed(encoder)
    rss_before = max_rss_mb()
    table, wall, cpu = timed(lambda: pipeline(args.video))
    peak_rss = max_rss_mb()
    _, wall_after, cpu_after = timed(encoder)
    encoder_frames = 2 * batches * args.batch_size
    result = {
        "dtype": str(pipeline.encoder.path),
        "frames": len(table),
        "encoder_fps": encoder_frames / (encoder_wall + wall_after) if batches else float("nan"),
        "pipeline_fps": len(table) / wall,
        "cpu_ratio": len(table) / cpu / (encoder_frames / (encoder_cpu + cpu_after)) if batches else float("nan"),
        "peak_rss_mb": peak_rss,
        "rss_growth_mb": peak_rss - rss_before,
        "load": os.getloadavg()[0],
    }
    if args.save:
        table.to_pickle(args.save)
    print(json.dumps(result))


def run_child(**options) -> dict:
    command = [sys.executable, __file__, "--child"]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"measurement {options} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def make_inputs(work: Path, args: argparse.Namespace) -> dict[str, Path]:
    """Random-weight models and generated videos (a face in a 320x240 room, with audio)."""
    import torch

    from modeling_abaw import FaceMAEConfig, FaceMAEForAffect
    from modeling_abaw.data.synth import generate_synthaffect

    paths = {}
    for size in {args.model_size, args.memory_model_size}:
        torch.manual_seed(0)
        FaceMAEForAffect(FaceMAEConfig(**face_mae_preset(size))).save_pretrained(work / size)
        paths[size] = work / size
    paths["tmf"] = make_tmf(work, paths[args.memory_model_size])
    for name, frames in (
        ("warmup", 40),
        ("error", args.error_frames),
        ("short", args.frames),
        ("long", args.frames * args.long_factor),
    ):
        generate_synthaffect(work / name, num_videos=1, num_frames=frames, seed=1)
        paths[name] = work / name / "videos" / "synth_000.mp4"
    return paths


def make_tmf(work: Path, visual: Path) -> Path:
    """A random-weight TMF fusing the memory runs' FaceMAE with a HuBERT-Base-sized audio model (768-d features at
    50 Hz, the paper's largest audio stream), both saved locally: the TMF path's memory at the paper's sizes."""
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    from modeling_abaw import FaceMAEConfig, TMFConfig, TMFForAffect

    torch.manual_seed(0)
    HubertModel(HubertConfig()).save_pretrained(work / "hubert")
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(work / "hubert")
    config = TMFConfig(
        modalities={"mae": FaceMAEConfig.from_pretrained(visual).hidden_size, "hubert": 768},
        # Audio is featurised a chunk at a time (30 s by default): memory stops growing once a video is longer than
        # a chunk, so the chunk here is shorter than the short video's 5 s.
        backbones={"mae": {"model": str(visual)}, "hubert": {"model": str(work / "hubert"), "chunk_seconds": 4.0}},
    )
    TMFForAffect(config).save_pretrained(work / "tmf")
    return work / "tmf"


def bf16_check(work: Path, paths: dict[str, Path], args: argparse.Namespace) -> dict[str, float | str]:
    """Speed and largest output differences of bfloat16 against float32, on the same frames."""
    import pandas as pd

    from modeling_abaw.tasks import AU, EXPR, VA

    tables, speeds = {}, {}
    for dtype in ("float32", "bfloat16"):
        speeds[dtype] = run_child(
            model=paths[args.model_size],
            video=paths["error"],
            dtype=dtype,
            batch_size=args.batch_size,
            smoothing="none",
            encoder_frames=args.batch_size,
            save=work / f"{dtype}.pkl",
        )
        tables[dtype] = pd.read_pickle(work / f"{dtype}.pkl")
    reference, bf16 = tables["float32"], tables["bfloat16"]
    errors = {
        f"{what} (fps), float32 -> bfloat16": f"{speeds['float32'][key]:.1f} -> {speeds['bfloat16'][key]:.1f}"
        for what, key in (("encoder alone", "encoder_fps"), ("whole pipeline", "pipeline_fps"))
    }
    errors |= {
        f"max |error| {name}": float(np.abs(bf16[list(task.labels)] - reference[list(task.labels)]).max(axis=None))
        for name, task in (("AU probability", AU), ("EXPR probability", EXPR), ("valence/arousal", VA))
    }
    errors["AU decisions equal (at 0.5)"] = float(
        ((bf16[list(AU.labels)] >= 0.5) == (reference[list(AU.labels)] >= 0.5)).to_numpy().mean()
    )
    errors["expression labels equal"] = float((bf16["expression"] == reference["expression"]).mean())
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model-size", choices=FACE_MAE_PRESETS, default="vit-base", help="model of the throughput runs"
    )
    parser.add_argument(
        "--memory-model-size",
        choices=FACE_MAE_PRESETS,
        default="vit-small",
        help="model of the short/long memory runs (the long video with ViT-Base takes minutes)",
    )
    parser.add_argument("--frames", type=int, default=150, help="frames of the short video")
    parser.add_argument("--long-factor", type=int, default=10, help="the long video has this many times more frames")
    parser.add_argument("--error-frames", type=int, default=32, help="frames of the float32-vs-bfloat16 video")
    parser.add_argument(
        "--encoder-frames",
        type=int,
        default=64,
        help="frames the encoder alone is timed on, before and after the pipeline",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "int8"])
    # Internal: one measurement in a child process.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("model", "video", "warmup", "save", "smoothing"):
        parser.add_argument(f"--{name}", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    import torch

    print(
        f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}, batch size {args.batch_size}, "
        "SynthAffect videos (320x240 H.264 + AAC, one face)\n"
    )
    print(
        "| model | video (frames) | dtype | encoder alone (fps) | whole pipeline (fps) | pipeline / encoder | "
        "same, in CPU time | peak RSS (MB) | peak RSS growth during the run (MB) | load average |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        paths = make_inputs(work, args)
        runs = [(args.model_size, "short"), (args.memory_model_size, "short"), (args.memory_model_size, "long")]
        runs += [("tmf", "short"), ("tmf", "long")]
        for size, video in dict.fromkeys(runs):
            r = run_child(
                model=paths[size],
                video=paths[video],
                warmup=paths["warmup"],
                dtype=args.dtype,
                batch_size=args.batch_size,
                encoder_frames=args.encoder_frames,
            )
            model = f"TMF ({args.memory_model_size} + HuBERT-Base)" if size == "tmf" else size
            print(
                f"| {model} | {video} ({r['frames']}) | {r['dtype']} | {r['encoder_fps']:.1f} | "
                f"{r['pipeline_fps']:.1f} | {r['pipeline_fps'] / r['encoder_fps']:.0%} | {r['cpu_ratio']:.0%} | "
                f"{r['peak_rss_mb']:.0f} | {r['rss_growth_mb']:.0f} | {r['load']:.1f} |",
                flush=True,
            )
        errors = bf16_check(work, paths, args)
    print(f"\nbfloat16 vs float32, {args.model_size}, {args.error_frames} frames, no smoothing:\n")
    print("| measure | value |\n|---|---|")
    for name, value in errors.items():
        print(f"| {name} | {value if isinstance(value, str) else f'{value:.4f}'} |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
