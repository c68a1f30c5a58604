"""`abaw export`: a FaceMAEForAffect or TMFForAffect checkpoint as an ONNX model folder, for onnxruntime and other
ONNX runtimes (as LibreFace and EmotiEffLib ship their models)."""

import argparse
import sys
from pathlib import Path

from ..tasks import PROBABILITY_TOLERANCE


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a FaceMAEForAffect or TMFForAffect checkpoint to ONNX",
        description="Write OUTPUT/model.onnx (one file, opset 18, dynamic batch axis), the model's config.json and, "
        "for FaceMAEForAffect, its preprocessor_config.json (resize and normalisation of the face crops). "
        "FaceMAEForAffect: input pixel_values (batch, 3, size, size); TMFForAffect: inputs per modality (mae, "
        "hubert, ...: batch, clip, size), <audio>_mask (float32) and attention_mask (int64), clip length dynamic up "
        "to the model's. Outputs: the tasks' au_logits, expr_logits, va and the features. The export is run in "
        f"onnxruntime beside torch and refused when a probability differs by more than {PROBABILITY_TOLERANCE}. "
        "Needs the onnx extra (pip install 'modeling-abaw[onnx]').",
    )
    parser.add_argument("--model", required=True, help="FaceMAEForAffect or TMFForAffect checkpoint: folder or Hub id")
    parser.add_argument("--format", default="onnx", choices=["onnx"], help="the export format (default onnx)")
    parser.add_argument("--output", type=Path, required=True, help="folder to write (created whole)")
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "int8"],
        help="float32 (default), or int8: MatMul weights dynamically quantised by onnxruntime (smaller, faster on "
        "CPUs)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT (default: refuse)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.checkpoints import load_checkpoint
    from ..inference.export import export_folder, refuse_existing, require_onnx
    from ..modeling_face_mae import FaceMAEForAffect
    from ..modeling_tmf import TMFForAffect

    # Both before loading a model, which may take a while.
    require_onnx("abaw export")
    refuse_existing(args.output, args.overwrite)
    model = load_checkpoint(args.model, (FaceMAEForAffect, TMFForAffect), "model")
    result = export_folder(model, args.output, dtype=args.dtype, overwrite=args.overwrite)
    print(
        f"abaw export: wrote {result.path} (inputs {', '.join(result.inputs)}; outputs {', '.join(result.outputs)}; "
        f"max |difference| of a prediction from torch: {result.max_delta:.2g})",
        file=sys.stderr,
    )
    return 0
