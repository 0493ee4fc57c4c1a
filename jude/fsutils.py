"""Filesystem helpers shared by everything that writes model directories."""

from __future__ import annotations

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
