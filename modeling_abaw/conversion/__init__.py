"""Converters of foreign checkpoints into this package's model folders.

- `mae`: facebookresearch/mae-format checkpoints (MAE-Face, FMAE, Meta's MAE) -> FaceMAE folders.
- `vggish`: the PyTorch VGGish port (harritaylor/torchvggish) -> VGGish folders.

Each has a `main(argv)` command line, run by the thin scripts in hub_scripts/.
"""
