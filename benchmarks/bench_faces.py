"""Face detection and alignment against SynthAffect's ground truth: the Haar cascade against BlazeFace.

    python benchmarks/bench_faces.py --data demo_output/synthaffect --model demo_output/finetune/best
    python benchmarks/bench_faces.py            # generates SynthAffect (12 videos x 150 frames); no agreement rows

SynthAffect's `face_tracks/<video>.csv` says where each face was drawn in the raw video: the square its aligned crop
shows (centre, side, roll) and the landmarks it was aligned on, and whether a hand hides it. Each detector runs as
the pipeline runs it (`FaceTracker` with the pipeline's defaults, every face kept) on the raw videos as generated
turned by `--turn` degrees (heads tilted further than SynthAffect's +-11 degrees), and shrunk by `--far` (faces
farther from the camera), frames and ground truth alike, about the frame's centre. Per detector and condition:

* detection rate: visible frames where the face's track has a box; false detections: hidden frames where it has;
* landmark error: mean distance of the four landmarks to the drawn ones (a detector without landmarks has none);
* crop IoU: overlap of the square the pipeline crops (`faces.crop_square`: aligned on the landmarks, or 1.4x the
  box without them) with the true aligned square; roll error: |estimated - true roll| (a detector without
  landmarks estimates none: its error is the true roll);
* frame-model agreement (`--model`, a trained FaceMAEForAffect): mean |difference| between the model's predictions
  on the pipeline's crops of the raw video and on the dataset's own `cropped_aligned` crops of the same frames,
  the gap between what a model sees at inference and what it was trained on (single-person test and validation
  videos; no smoothing);
* speed: milliseconds per frame of the face stage (decode at the pipeline's detection size excluded: detection
  and tracking), of cutting the crops at full size, and of the Space's live webcam path (`predict_frame`: one
  frame detected, cropped and predicted on its own, with a random demo-small model on one torch thread).

Prints the CPU model and a markdown table; `--figure` draws the same frames' crops side by side (PNG).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import pandas as pd

from modeling_abaw.alignment import LANDMARKS, AlignedSquare
from modeling_abaw.data.affwild2 import image_name
from modeling_abaw.data.synth import generate_synthaffect
from modeling_abaw.inference.faces import FaceTrack, FaceTracker, crop_face, crop_square, face_detector
from modeling_abaw.machine import cpu_model
from modeling_abaw.media import open_media
from modeling_abaw.tasks import AU, EXPR, VA

DETECTORS = ("haar", "blazeface")
DETECTION_SIZE = 320  # AffectPipeline's default


class View(NamedTuple):
    """How the raw frames are shown to the detector: turned (degrees, counter-clockwise) and scaled about the
    frame's centre; what falls outside the frame repeats its border pixels."""

    angle: float = 0.0
    scale: float = 1.0

    def matrix(self, width: int, height: int) -> np.ndarray:
        return cv2.getRotationMatrix2D((width / 2, height / 2), self.angle, self.scale)

    def frame(self, image: np.ndarray) -> np.ndarray:
        if self == View():
            return image
        height, width = image.shape[:2]
        return cv2.warpAffine(image, self.matrix(width, height), (width, height), borderMode=cv2.BORDER_REPLICATE)

    def truth(self, truth: pd.DataFrame, width: int, height: int) -> pd.DataFrame:
        if self == View():
            return truth
        matrix, truth = self.matrix(width, height), truth.copy()
        for x, y in [("cx", "cy"), *((f"{name}_x", f"{name}_y") for name in LANDMARKS)]:
            truth[[x, y]] = truth[[x, y]].to_numpy() @ matrix[:, :2].T + matrix[:, 2]
        truth["angle"] += self.angle
        truth["size"] *= self.scale
        return truth


def read_truth(root: Path, video: str) -> dict[str, pd.DataFrame]:
    """Ground-truth face tracks of a raw video, by annotated name (a two-person video has two)."""
    files = sorted((root / "face_tracks").glob(f"{video}*.csv"))
    return {path.stem: pd.read_csv(path) for path in files if path.stem in (video, f"{video}_left", f"{video}_right")}


def square_iou(a: AlignedSquare, b: AlignedSquare) -> float:
    overlap, _ = cv2.intersectConvexConvex(a.corners().astype(np.float32), b.corners().astype(np.float32))
    return float(overlap / (a.size**2 + b.size**2 - overlap))


def track_video(detector, path: Path, view: View) -> tuple[list, float, int]:
    """The people the pipeline's tracker finds (boxes in full-frame pixels), its seconds and the frame count."""
    media = open_media(path)
    tracker, seconds, frames = FaceTracker(detector), 0.0, 0
    for frame in media.frames(max_side=DETECTION_SIZE):
        image, scale = view.frame(frame.image), media.width / frame.image.shape[1]
        started = time.perf_counter()
        tracker.update(image)
        seconds += time.perf_counter() - started
        frames += 1
    people = [FaceTrack({i: box.transformed(scale) for i, box in person.boxes.items()}) for person in tracker.faces()]
    return people, seconds, frames


def nearest_person(people: list, truth: pd.DataFrame):
    """The person whose boxes lie nearest the true centres, on the frames both have."""

    def distance(person) -> float:
        shared = [i for i in person.boxes if i < len(truth)]
        if not shared:
            return np.inf
        centres = np.array([person.boxes[i].centre for i in shared])
        return float(np.mean(np.hypot(*(centres - truth[["cx", "cy"]].to_numpy()[shared]).T)))

    return min(people, key=distance, default=None)


def detection_rows(root: Path, videos: list[str], detectors: dict, view: View) -> dict[str, dict]:
    """Detection, crop and roll figures (and the face stage's time per frame) of each detector."""
    results = {}
    for name, detector in detectors.items():
        found = visible = false = hidden = 0
        ious, roll_errors, landmark_errors, seconds, frames = [], [], [], 0.0, 0
        for video in videos:
            path = root / "videos" / f"{video}.mp4"
            people, spent, count = track_video(detector, path, view)
            seconds, frames = seconds + spent, frames + count
            media = open_media(path)
            for truth in read_truth(root, video).values():
                truth = view.truth(truth, media.width, media.height)
                person = nearest_person(people, truth)
                boxes = person.boxes if person else {}
                for row in truth.itertuples():
                    box = boxes.get(row.frame - 1)
                    if not row.visible:
                        hidden += 1
                        false += box is not None
                        continue
                    visible += 1
                    if box is None:
                        continue
                    found += 1
                    square = crop_square(box)
                    ious.append(square_iou(square, AlignedSquare(row.cx, row.cy, row.size, row.angle)))
                    roll = square.angle if box.landmarks is not None else 0.0
                    roll_errors.append(abs((roll - row.angle + 180) % 360 - 180))
                    if box.landmarks is not None:
                        true_points = np.array([[getattr(row, f"{n}_x"), getattr(row, f"{n}_y")] for n in LANDMARKS])
                        offsets = np.hypot(*(np.asarray(box.landmarks) - true_points).T)
                        landmark_errors.append(offsets.mean() / row.size)
        results[name] = {
            "detection rate (visible frames)": found / visible,
            "false detections (hidden frames)": false / max(hidden, 1),
            "crop IoU with the true aligned square": float(np.mean(ious)) if ious else float("nan"),
            "roll error (degrees)": float(np.mean(roll_errors)) if roll_errors else float("nan"),
            "landmark error (% of the crop's side)": 100 * float(np.mean(landmark_errors))
            if landmark_errors
            else float("nan"),
            "face stage (ms per frame)": 1000 * seconds / frames,
            "_counts": {"visible": visible, "hidden": hidden},
        }
    return results


def crop_speed(root: Path, video: str, detector) -> float:
    """Milliseconds to cut one face crop at full size (224 x 224) from the tracked boxes."""
    people, _, _ = track_video(detector, root / "videos" / f"{video}.mp4", View())
    boxes = people[0].boxes
    frames = [frame.image for frame in open_media(root / "videos" / f"{video}.mp4").frames()]
    started = time.perf_counter()
    for index, box in boxes.items():
        crop_face(frames[index], box, 224)
    return 1000 * (time.perf_counter() - started) / len(boxes)


def live_frame_ms(root: Path, video: str, detectors: dict, frames: int = 30) -> dict[str, dict[str, float]]:
    """The Space's live webcam path, `AffectPipeline.predict_frame`, on 640x480 frames (the raw video enlarged) with
    a random demo-small model and one torch thread: milliseconds per frame in all, and in the face detector."""
    import torch

    from modeling_abaw import FaceMAEConfig, FaceMAEForAffect
    from modeling_abaw.inference import AffectPipeline
    from modeling_abaw.presets import face_mae_preset

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = FaceMAEForAffect(FaceMAEConfig(**face_mae_preset("demo-small")))
    images = [cv2.resize(frame.image, (640, 480)) for frame in open_media(root / "videos" / f"{video}.mp4").frames()]
    results = {}
    for name, detector in detectors.items():
        pipeline = AffectPipeline.from_model(model, device="cpu", dtype="float32", detector=detector)
        pipeline.predict_frame(images[0])  # warm-up
        started = time.perf_counter()
        for image in images[1 : frames + 1]:
            pipeline.predict_frame(image)
        total = (time.perf_counter() - started) / frames
        small = [cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA) for image in images[1 : frames + 1]]
        started = time.perf_counter()
        for image in small:
            detector(image)
        results[name] = {"total": 1000 * total, "detector": 1000 * (time.perf_counter() - started) / frames}
    torch.set_num_threads(threads)
    return results


def agreement_rows(root: Path, videos: list[str], model: str, detectors: dict) -> dict[str, dict]:
    """Mean |difference| of the model's predictions on the pipeline's crops and on the dataset's crops."""
    from modeling_abaw.inference import AffectPipeline

    columns = {"AU probabilities": list(AU.labels), "EXPR probabilities": list(EXPR.labels), "VA": list(VA.labels)}
    results = {name: {key: [] for key in columns} for name in detectors}
    reference = AffectPipeline.from_pretrained(model, device="cpu", dtype="float32", smoothing="none")
    for video in videos:
        crops = root / "cropped_aligned" / video
        num_frames = len(read_truth(root, video)[video])
        paths = [crops / image_name(i) if (crops / image_name(i)).is_file() else None for i in range(1, num_frames + 1)]
        theirs = reference.predict_crops(paths)
        has_crop = np.array([p is not None for p in paths])
        for name, detector in detectors.items():
            reference.detector = detector
            table = reference(root / "videos" / f"{video}.mp4")
            both = has_crop & (table["has_face"].to_numpy() == 1)
            for key, labels in columns.items():
                task = {"AU probabilities": "au", "EXPR probabilities": "expr", "VA": "va"}[key]
                if task in theirs:
                    difference = np.abs(table[labels].to_numpy()[both] - theirs[task][both])
                    results[name][key].append(difference)
    return {
        name: {
            f"agreement: mean |delta| {key}": float(np.concatenate(values).mean())
            for key, values in parts.items()
            if values
        }
        for name, parts in results.items()
    }


def draw_crops(root: Path, video: str, detectors: dict, views: dict[str, View], path: Path) -> None:
    """A row per frame: the dataset's crop, then each detector's crop of the raw frame in each view."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = read_truth(root, video)[video]
    frame_numbers = truth.loc[truth["visible"] == 1, "frame"].to_numpy()[:: max(1, len(truth) // 4)][:4]
    media = open_media(root / "videos" / f"{video}.mp4")
    frames = [frame.image for frame in media.frames()]
    columns = ["dataset crop"] + [f"{name},\n{view}" for view in views for name in detectors]
    size = (1.6 * len(columns), 1.7 * len(frame_numbers))
    figure, axes = plt.subplots(len(frame_numbers), len(columns), figsize=size, squeeze=False)
    for view_index, view in enumerate(views.values()):
        for d, detector in enumerate(detectors.values()):
            people, _, _ = track_video(detector, media.path, view)
            person = nearest_person(people, view.truth(truth, media.width, media.height))
            for r, number in enumerate(frame_numbers):
                image = view.frame(frames[number - 1])
                box = person.boxes.get(number - 1) if person else None
                ax = axes[r, 1 + view_index * len(detectors) + d]
                ax.imshow(crop_face(image, box, 112) if box else np.zeros((112, 112, 3), np.uint8))
    for r, number in enumerate(frame_numbers):
        axes[r, 0].imshow(cv2.imread(str(root / "cropped_aligned" / video / image_name(number)))[..., ::-1])
        axes[r, 0].set_ylabel(f"frame {number}", fontsize=8)
    for ax, title in zip(axes[0], columns):
        ax.set_title(title, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(f"SynthAffect {video}: what the model sees (black: no face found)", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a SynthAffect with raw videos (default: generate one)")
    parser.add_argument("--videos", type=int, default=12, help="videos to generate without --data")
    parser.add_argument("--frames", type=int, default=150, help="frames per generated video")
    parser.add_argument("--max-videos", type=int, help="measure detection on the first N raw videos (default: all)")
    parser.add_argument("--model", help="a trained FaceMAEForAffect for the agreement rows")
    parser.add_argument("--turn", type=float, default=30.0, help="extra roll of the turned condition (degrees)")
    parser.add_argument("--far", type=float, default=3.0, help="the far condition shrinks the frames this much")
    parser.add_argument("--figure", type=Path, help="draw the crops of one video here (PNG)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    detectors = {name: face_detector(name) for name in DETECTORS}
    started = time.perf_counter()
    print(f"CPU: {cpu_model()}")
    with tempfile.TemporaryDirectory() as folder:
        root = args.data or generate_synthaffect(Path(folder) / "synth", args.videos, args.frames).root
        info = json.loads((root / "synthaffect.json").read_text())
        videos = sorted(path.stem for path in (root / "videos").glob("*.mp4"))[: args.max_videos]
        views = {
            "as generated": View(),
            f"turned {args.turn:g} deg": View(angle=args.turn),
            f"far (1/{args.far:g} size)": View(scale=1 / args.far),
        }
        table = {condition: detection_rows(root, videos, detectors, view) for condition, view in views.items()}
        speed = {name: crop_speed(root, videos[0], detector) for name, detector in detectors.items()}
        live = live_frame_ms(root, videos[0], detectors)
        agreement = {}
        if args.model:
            single = {path.stem for path in (root / "videos").glob("*.mp4")}  # a two-person video has other names
            held_out = [name for split in ("Validation_Set", "Test_Set") for name in info["splits"][split]]
            held_out = [name for name in held_out if name in single]
            agreement = agreement_rows(root, held_out, args.model, detectors)
        if args.figure:
            draw_crops(root, videos[0], detectors, views, args.figure)
    counts = table["as generated"][DETECTORS[0]].pop("_counts")
    for condition in table.values():
        for row in condition.values():
            row.pop("_counts", None)
    print(
        f"{len(videos)} SynthAffect videos ({counts['visible']} visible and {counts['hidden']} hidden face frames), "
        f"detection at {DETECTION_SIZE} px, {time.perf_counter() - started:.0f} s\n"
    )
    print(f"| measure | condition | {' | '.join(DETECTORS)} |\n|---|---|{'---:|' * len(DETECTORS)}")
    for condition, rows in table.items():
        for measure in rows[DETECTORS[0]]:
            values = " | ".join(f"{rows[name][measure]:.3g}" for name in DETECTORS)
            print(f"| {measure} | {condition} | {values} |")
    print(f"| crop cut at 224 px (ms per face) | as generated | {' | '.join(f'{speed[n]:.2f}' for n in DETECTORS)} |")
    for part in ("total", "detector"):
        values = " | ".join(f"{live[name][part]:.1f}" for name in DETECTORS)
        print(f"| live webcam frame, {part} (ms; 640x480, demo-small, 1 thread) | as generated | {values} |")
    for measure in next(iter(agreement.values()), {}):
        values = " | ".join(f"{agreement[name][measure]:.4f}" for name in DETECTORS)
        print(f"| {measure} | as generated | {values} |")
    if args.json:
        record = {"conditions": table, "crop_ms": speed, "live_ms": live, "agreement": agreement}
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
