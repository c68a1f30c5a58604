"""SynthAffect on disk: all-or-nothing outputs when a run is interrupted, and `abaw synth` staying light to import."""

import ast
import json
from pathlib import Path

import pytest

import modeling_abaw.commands.synth as synth_command
from modeling_abaw.data.synth import generate_synthaffect, writer


def test_an_interrupted_video_leaves_no_video_crops_or_temporary_files(tmp_path, monkeypatch):
    """The second video fails on its 6th frame: the first video is complete, the second left no file at all."""
    encode = writer.Mp4Encoder.write
    calls = []

    def failing_write(self, frame):
        calls.append(None)
        if len(calls) == 12 + 6:
            raise KeyboardInterrupt
        encode(self, frame)

    monkeypatch.setattr(writer.Mp4Encoder, "write", failing_write)
    root = tmp_path / "synth"
    with pytest.raises(KeyboardInterrupt):
        generate_synthaffect(root, num_videos=2, num_frames=12, seed=0)
    assert [path.name for path in (root / "videos").iterdir()] == ["synth_000.mp4"]
    assert [path.name for path in (root / "cropped_aligned").iterdir()] == ["synth_000"]
    assert not [path for path in root.rglob("*") if path.name.startswith(".")], "temporary files left behind"
    assert not json.loads((root / "synthaffect.json").read_text())["complete"]


def test_synth_command_imports_only_the_standard_library_at_module_level():
    """`abaw --help` imports every command module: the generator's numpy/cv2/av are imported only when it runs (a
    sibling command module, light by the same rule, may be imported: `--push-to-hub` is `abaw push-synthaffect`'s)."""
    tree = ast.parse(Path(synth_command.__file__).read_text())
    modules = [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
    modules += [node.module for node in tree.body if isinstance(node, ast.ImportFrom) and not node.level]
    assert set(modules) <= {"argparse", "pathlib", "__future__"}, modules
    siblings = [node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.level == 1]
    assert siblings == ["push_synthaffect"]
