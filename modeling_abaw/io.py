"""Atomic writes: the one way the package writes a file or a folder that someone else may read.

A file (or folder) is written under a temporary name beside its destination and moved into place in one step once it
is complete, so an interrupted run never leaves a truncated file where a reader, a cache lookup or a resumed run
would take it for a complete one. Temporary names are unique (several processes or threads may write beside each
other) and keep the destination's extension, so writers that choose a format from the extension (PyAV, PIL) work.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PathLike = str | os.PathLike


def _default_permissions(path: str, mode: int) -> None:
    # mkstemp/mkdtemp create owner-only entries; give them the permissions of a normally created one.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary file path beside `path`; on success it replaces `path` in one step, on error it is removed.

    The caller writes the temporary path with any writer (`np.save`, `save_file`, `to_csv`, PyAV, ...).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(handle)
    try:
        yield Path(temporary)
        _default_permissions(temporary, 0o666)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_directory(path: PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path` (and whatever was there), on
    error it is removed. For model folders, checkpoints and other multi-file outputs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield temporary
        _default_permissions(str(temporary), 0o777)
        replace_directory(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def replace_directory(source: PathLike, target: PathLike) -> None:
    """Move the complete folder `source` to `target`, replacing a previous `target`: the old one is renamed aside
    first, so `target` is at every moment either the old complete folder or the new one."""
    source, target = Path(source), Path(target)
    if not target.exists():
        source.rename(target)
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    old.rmdir()
    target.rename(old)
    source.rename(target)
    shutil.rmtree(old)


def write_text(path: PathLike, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json(path: PathLike, data, sort_keys: bool = False) -> None:
    """Write `data` as indented JSON (with a final newline) atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys) + "\n")
