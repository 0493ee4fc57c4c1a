"""Filesystem helpers: directories and files replaced in one rename, never left half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_directory(path: str | Path, keep_if: str | None = None) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to fill; on success it replaces ``path`` in one rename.

    A crash or an exception leaves ``path`` as it was (and no half-written directory behind).
    ``keep_if`` names a file: when ``path`` already has it at the end (another
    process on a shared disk finished the same directory first), that directory
    is kept and the new one discarded.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if keep_if is not None and (path / keep_if).exists():
            shutil.rmtree(tmp)
            return
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` through a temporary sibling that is fsynced, then renamed into place.

    Readers see the old file or the whole new one, never a partial write, even
    when several threads or processes write the same path (the last rename wins)
    or the writer crashes. The parent directory is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
