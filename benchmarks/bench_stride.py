"""Frame stride: what encoding every k-th face frame (and interpolating the others) saves and what it costs.

    python benchmarks/bench_stride.py --data demo_output/synthaffect --model demo_output/finetune/best

For each stride k, on SynthAffect's test videos:

* error: the trained `--model`'s predictions (its own smoothing policy, as `abaw predict` gives them) at stride k
  against stride 1: mean and largest |difference| of the AU and EXPR probabilities and of valence/arousal, on face
  frames; and the challenge metrics (AU F1, EXPR F1, VA CCC) of both against the test labels;
* speed: the whole pipeline (both decoding passes, detection, tracking, cropping, encoding, post-processing) in
  frames per second with a random-weight `--speed-model-size` FaceMAE (speed does not depend on the weights; the
  demo's model is far smaller than the paper's ViT-B, so its encoder is not what a user waits for), and the ratio
  to stride 1 measured in the same run.

Prints the CPU model and markdown tables.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from modeling_abaw import FaceMAEConfig, FaceMAEForAffect
from modeling_abaw.data.affwild2 import read_annotation
from modeling_abaw.inference import AffectPipeline
from modeling_abaw.machine import cpu_model
from modeling_abaw.metrics import compute_abaw_metrics
from modeling_abaw.presets import FACE_MAE_PRESETS, face_mae_preset
from modeling_abaw.tasks import TASKS

CHALLENGES = {"au": "AU_Detection_Challenge", "expr": "EXPR_Recognition_Challenge", "va": "VA_Estimation_Challenge"}


def test_videos(root: Path) -> list[str]:
    info = json.loads((root / "synthaffect.json").read_text())
    single = {path.stem for path in (root / "videos").glob("*.mp4")}
    return [video for video in info["splits"]["Test_Set"] if video in single]


def predictions(
    pipeline: AffectPipeline, root: Path, videos: list[str]
) -> tuple[dict, np.ndarray, float, list[int], int]:
    """Task -> (N, C) predictions over the videos' frames, their face mask, wall seconds, frames per video, encoded
    frames."""
    outputs, faces, encoded = {name: [] for name in pipeline.tasks}, [], 0
    started = time.perf_counter()
    for video in videos:
        table = pipeline(root / "videos" / f"{video}.mp4")
        for name in pipeline.tasks:
            outputs[name].append(table[list(TASKS[name].labels)].to_numpy())
        faces.append(table["has_face"].to_numpy() == 1)
        encoded += int(table["predicted"].sum())
    seconds = time.perf_counter() - started
    lengths = [len(video_faces) for video_faces in faces]
    faces = np.concatenate(faces)
    outputs = {name: np.concatenate(values) for name, values in outputs.items()}
    return outputs, faces, seconds, lengths, encoded


def labels_of(root: Path, videos: list[str], tasks: list[str], lengths: list[int]) -> dict[str, np.ndarray]:
    labels = {}
    for name in tasks:
        parts = []
        for video, length in zip(videos, lengths):
            values = read_annotation(root / "annotations" / CHALLENGES[name] / "Test_Set" / f"{video}.txt", name)
            parts.append(values[:length])
        labels[name] = np.concatenate(parts)
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a SynthAffect folder (e.g. the demo's)")
    parser.add_argument("--model", required=True, help="a trained FaceMAEForAffect (e.g. the demo's finetune/best)")
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--speed-model-size", choices=FACE_MAE_PRESETS, default="vit-base")
    parser.add_argument("--speed-videos", type=int, default=2, help="test videos the speed runs take")
    args = parser.parse_args()
    strides = sorted(set(args.strides) | {1})

    videos = test_videos(args.data)
    print(f"CPU: {cpu_model()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"{len(videos)} SynthAffect test videos; error model {args.model}\n")

    runs = {}
    for stride in strides:
        pipeline = AffectPipeline.from_pretrained(args.model, device="cpu", dtype="float32", stride=stride)
        runs[stride] = predictions(pipeline, args.data, videos)
    tasks = list(runs[1][0])
    reference, face = runs[1][0], runs[1][1]
    labels = labels_of(args.data, videos, tasks, runs[1][3])

    print("| stride | encoded frames | " + " | ".join(f"{name.upper()} mean / max abs diff" for name in tasks)
          + " | " + " | ".join(_metric_names(tasks)) + " |")  # fmt: skip
    print("|---" * (2 + 2 * len(tasks)) + "|")
    for stride, (outputs, face_mask, _, _, encoded) in runs.items():
        differences = [np.abs(outputs[name][face] - reference[name][face]) for name in tasks]
        metrics = compute_abaw_metrics({name: np.nan_to_num(outputs[name]) for name in tasks}, labels, tasks)
        print(
            f"| {stride} | {encoded / len(face_mask):.0%} | "
            + " | ".join(f"{d.mean():.4f} / {d.max():.3f}" for d in differences)
            + " | "
            + " | ".join(f"{metrics[TASKS[name].metric_key]:.3f}" for name in tasks)
            + " |",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        FaceMAEForAffect(FaceMAEConfig(**face_mae_preset(args.speed_model_size))).save_pretrained(folder)
        speed_videos = videos[: args.speed_videos]
        warmup = AffectPipeline.from_pretrained(folder, device="cpu", dtype="float32")
        warmup(args.data / "videos" / f"{speed_videos[0]}.mp4")
        print(f"\nSpeed, {args.speed_model_size} (random weights), {len(speed_videos)} test videos, float32:\n")
        print("| stride | whole pipeline (frames/s) | speed-up over stride 1 | target 0.8 k |")
        print("|---|---|---|---|")
        base = None
        for stride in strides:
            pipeline = AffectPipeline.from_pretrained(folder, device="cpu", dtype="float32", stride=stride)
            _, _, seconds, lengths, _ = predictions(pipeline, args.data, speed_videos)
            base = base or seconds
            fps = sum(lengths) / seconds
            print(f"| {stride} | {fps:.2f} | {base / seconds:.2f}x | {0.8 * stride:.1f}x |", flush=True)


def _metric_names(tasks: list[str]) -> list[str]:
    return [{"au": "AU F1", "expr": "EXPR F1", "va": "VA CCC"}[name] for name in tasks]


if __name__ == "__main__":
    main()
