"""make screenshots: each of jude's HTML reports as PNGs under docs/img/, taken by headless Chromium.

    python scripts/screenshots.py [--source auto|runs|synthetic] [--out docs/img] [--only evaluation labels ...]

Two viewports per report: 1280x384, the height of ZenML's visualisation frame (what the first screen
shows), and 1280x900 (a browser window). Files: ``docs/img/<report>-384.png`` and ``<report>-900.png``.

Where each report comes from (``--source auto``, the default: the first that has it):

1. ``runs``: the last runs' artifacts. The evaluation report of the latest train run and the drift report
   of the latest monitor run are MLflow artifacts (the project's tracking store, ``.jude/``); the label,
   bootstrap and ranker reports are ZenML artifacts (``label_report``, ``bootstrap_report_html``,
   ``ranker_report``). The ranker report comes from a run only: without one it is skipped, with a message.
2. ``synthetic``: rendered here by jude's own report functions on the smoke configuration's synthetic
   marketplace (``configs/train_smoke.yaml``): labels judged by the rubric, six LoRA steps on MiniLM, the
   base and fine-tuned models evaluated on pooled judgements; a drift check of a current window whose roles
   shifted; a bootstrap of the marketplace's snapshot into an offline history in a temporary directory.
   Several minutes on 2 CPU cores. Nothing is made up: every number is computed.

Why here (``scripts/``) and not in ``jude/`` or ``bench/``: it is a documentation tool, not library code
(it reads ZenML artifacts, which ``jude/`` never imports) and not a benchmark (it measures nothing).
Needs Chromium (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jude.env import apply_offline_env  # noqa: E402

apply_offline_env({"ZENML_LOGGING_VERBOSITY": "WARN"})

REPORTS = ("evaluation", "labels", "drift", "bootstrap", "ranker")
RUNS_ONLY = {"ranker": "python run.py --pipeline ranker"}  # no synthetic rendering: a real run is needed
VIEWPORTS = ((1280, 384), (1280, 900))
MAX_PNG_BYTES = 300_000  # a PNG above this is re-encoded with a 256-colour palette (text stays sharp)
SMOKE_CONFIG = ROOT / "configs" / "train_smoke.yaml"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass
class Report:
    name: str
    html: str
    source: str  # where it came from, for the log


class ScreenshotError(RuntimeError):
    pass


# ---- the browser ------------------------------------------------------------------------------


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise ScreenshotError(
        f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)}); on Debian/Ubuntu: apt-get install chromium"
    )


def screenshot(chromium: str, page: Path, png: Path, width: int, height: int) -> None:
    """``page`` at a ``width`` x ``height`` viewport, as ``png`` (the first screen only, as a user sees it)."""
    with tempfile.TemporaryDirectory(prefix="jude-chromium-") as profile:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",  # as root in a container Chromium refuses to start otherwise
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--force-device-scale-factor=1",
            f"--window-size={width},{height}",
            "--virtual-time-budget=10000",  # the drift report's Evidently widgets render from JavaScript
            f"--screenshot={png}",
            page.as_uri(),
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if res.returncode != 0 or not png.exists():
        raise ScreenshotError(f"chromium failed on {page} (exit {res.returncode}):\n{res.stderr[-2000:]}")
    _shrink(png)


def _shrink(png: Path) -> None:
    """Re-encode a large PNG with a 256-colour palette: a report is text and flat colours, so it stays sharp."""
    from PIL import Image

    if png.stat().st_size <= MAX_PNG_BYTES:
        return
    with Image.open(png) as img:
        small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(png, optimize=True)


# ---- reports from the last runs ---------------------------------------------------------------


def _mlflow_artifact(run_name_like: str, artifact: str) -> Report | None:
    """``artifact`` of the latest run of the project's experiment whose name is LIKE ``run_name_like``."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from jude.config import RegistryConfig
    from jude.registry.mlflow_registry import resolve_tracking_uri

    uri = resolve_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(RegistryConfig().experiment)
    if exp is None:
        return None
    mlflow.set_tracking_uri(uri)
    runs = client.search_runs(
        [exp.experiment_id],
        f"attributes.run_name LIKE '{run_name_like}'",
        order_by=["attributes.start_time DESC"],
        max_results=20,
    )
    for run in runs:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=artifact, dst_path=tmp)
            except (MlflowException, OSError):
                continue
            html = Path(path).read_text(encoding="utf-8")
        return Report("", html, f"MLflow run {run.info.run_name} ({run.info.run_id}), artifact {artifact}")
    return None


def _zenml_artifact(name: str) -> Report | None:
    """The latest version of the ZenML artifact ``name`` (an HTMLString), or None."""
    from zenml.client import Client

    try:
        version = Client().get_artifact_version(name)
        html = str(version.load())
    except Exception as e:  # no such artifact, or its files are gone (another machine's store): fall back
        print(f"  ZenML artifact {name!r} not readable ({type(e).__name__}: {str(e)[:120]})")
        return None
    return Report("", html, f"ZenML artifact {name} version {version.version}")


FROM_RUNS: dict[str, Callable[[], Report | None]] = {
    "evaluation": lambda: _mlflow_artifact("train_pipeline%", "evaluation/report.html"),
    "drift": lambda: _mlflow_artifact("monitor", "monitor/drift_report.html"),
    "labels": lambda: _zenml_artifact("label_report"),
    "bootstrap": lambda: _zenml_artifact("bootstrap_report_html"),
    "ranker": lambda: _zenml_artifact("ranker_report"),
}


# ---- reports rendered on the synthetic marketplace --------------------------------------------


class Synthetic:
    """The smoke configuration's data, built once and shared by the reports that need it."""

    def __init__(self, work: Path):
        self.work = work
        self._data = None
        from jude.config import read_pipeline_config

        self.cfg = read_pipeline_config("train", SMOKE_CONFIG)

    @property
    def data(self):
        if self._data is None:
            from jude.training.data import build_training_data

            self._data = build_training_data(self.cfg)
        return self._data

    def labels(self) -> str:
        from jude.labels.report import label_report, label_report_html

        return label_report_html(label_report(self.data.labels.table))

    def evaluation(self) -> str:
        from jude.evaluation.report import render_variants
        from jude.evaluation.retrieval import retrieve
        from jude.evaluation.variants import evaluate_variants
        from jude.labels.judges import make_judge
        from jude.modeling.embedder import Embedder
        from jude.training.fit import fit

        cfg, d = self.cfg, self.data
        m = d.market
        out = self.work / "finetuned"
        fit(
            d.split.pairs,
            m.jobs,
            m.members,
            cfg.model,
            cfg.lora,
            cfg.train,
            out,
            loss_cfg=cfg.loss,
            scale=cfg.scale,
            show_progress=False,
        )
        runs = {
            "base": retrieve(Embedder.from_base(cfg.model), d.split.test, k=100, batch_size=cfg.eval.batch_size),
            "finetuned": retrieve(Embedder.load(out), d.split.test, k=100, batch_size=cfg.eval.batch_size),
        }
        judge = make_judge(cfg.labels) if cfg.eval.qrels == "pooled" else None
        table = evaluate_variants(runs, d.split.test, judge, cfg.eval, cfg.labels.relevant_grade)
        return render_variants(table)

    def drift(self) -> str:
        from jude.config import MonitorConfig
        from jude.data.synthetic import generate_marketplace
        from jude.modeling.embedder import Embedder
        from jude.monitoring.drift import detect_drift
        from jude.monitoring.report import render_html
        from jude.monitoring.windows import (
            compute_windows,
            current_entities,
            embed_window,
            reference_entities,
            sample_entities,
        )

        # the current window comes from the same marketplace with its roles shifted: what an alert looks like
        monitor = MonitorConfig(entity_types=["job", "profile"], current_days=21, sample_size=150)
        syn = self.cfg.data.synthetic.model_copy(update={"n_jobs": 400, "n_members": 400, "days": 90})
        base = generate_marketplace(syn)
        shifted = generate_marketplace(syn.model_copy(update={"shift": "roles"}))
        val, test = self.cfg.data.val_fraction, self.cfg.data.test_fraction
        w = compute_windows(base.jobs, base.members, base.interactions, monitor, val, test)
        model = Embedder.from_base(self.cfg.model)
        results = []
        for i, entity_type in enumerate(monitor.entity_types):
            ref = reference_entities(entity_type, base.jobs, base.members, w)
            cur = current_entities(entity_type, shifted.jobs, shifted.members, w)
            sets = [
                embed_window(
                    model, entity_type, sample_entities(frame, monitor.sample_size, 2 * i + k), window, "smoke", False
                )
                for k, (frame, window) in enumerate(((ref, "reference"), (cur, "current")))
            ]
            results.append(detect_drift(sets[0], sets[1], monitor, report=True))
        return render_html(results)

    def bootstrap(self) -> str:
        from jude.bootstrap.backfill import backfill
        from jude.bootstrap.engines import make_engine
        from jude.bootstrap.report import bootstrap_html
        from jude.bootstrap.selection import select, snapshot_rows
        from jude.modeling.embedder import Embedder
        from jude.stores.offline import DeltaHistory

        model_dir = self.work / "base-model"
        Embedder.from_base(self.cfg.model).save(model_dir)
        market = self.data.market
        rows = select(
            snapshot_rows({"jobs": market.jobs, "members": market.members}, ["job", "profile", "resume"]),
            ["job", "profile", "resume"],
            None,
            None,
            None,
        )
        report = backfill(
            rows,
            make_engine("local", model_dir),
            None,  # the offline history alone: no Redis needed for a picture
            DeltaHistory(str(self.work / "history")),
            embedding_version="minilm-smoke",
            model_version="minilm",
        )
        return bootstrap_html(report.to_dict())


# ---- main -------------------------------------------------------------------------------------


def collect(names: list[str], source: str, work: Path) -> Iterator[Report]:
    """Each report in turn (so its pictures are taken before the next one is rendered)."""
    synthetic = Synthetic(work)
    for name in names:
        started = time.perf_counter()
        found = FROM_RUNS[name]() if source in ("auto", "runs") else None
        if found is None and source == "runs":
            raise ScreenshotError(f"no {name} report in the last runs' artifacts (run its pipeline first)")
        if found is None and name in RUNS_ONLY:  # its report needs the stores and a trained model
            print(f"{name}: skipped, no run of its pipeline in this store (run `{RUNS_ONLY[name]}` first)")
            continue
        if found is None:
            found = Report(
                name, getattr(synthetic, name)(), f"rendered on the synthetic marketplace ({SMOKE_CONFIG.name})"
            )
        found.name = name
        print(f"{name}: {found.source} ({time.perf_counter() - started:.0f} s)")
        yield found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=("auto", "runs", "synthetic"), default="auto")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--only", nargs="+", choices=REPORTS, default=list(REPORTS))
    parser.add_argument("--keep-html", action="store_true", help="also write each report's HTML next to its PNGs")
    args = parser.parse_args(argv)
    try:
        chromium = find_chromium()
        args.out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="jude-screenshots-") as tmp:
            work = Path(tmp)
            for report in collect(args.only, args.source, work):
                page = work / f"{report.name}.html"
                page.write_text(report.html, encoding="utf-8")
                if args.keep_html:
                    shutil.copy(page, args.out / page.name)
                for width, height in VIEWPORTS:
                    png = args.out / f"{report.name}-{height}.png"
                    screenshot(chromium, page, png, width, height)
                    shown = png.relative_to(ROOT) if png.is_relative_to(ROOT) else png
                    print(f"  {shown}: {png.stat().st_size // 1024} KB")
    except ScreenshotError as e:
        print(f"screenshots: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
