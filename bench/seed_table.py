"""The headline table over seeds: ``configs/train.yaml``'s whole chain for every data seed x training seed.

    .venv/bin/python bench/seed_table.py                      # 3 data seeds x 3 training seeds (~9 x 12 min, 2 cores)
    .venv/bin/python bench/seed_table.py --cells 1:0 2:0      # only these cells (data:train); the rest are kept
    .venv/bin/python bench/seed_table.py --report             # the table from the cells measured so far
    .venv/bin/python bench/seed_table.py --data-seeds 2 --train-seeds 0 --ranker configs/ranker.yaml  # + ranker

Each cell is one ``python run.py --pipeline train`` run of the config (labels, fine-tuning, teacher,
distillation, evaluation, selection on the validation members, registration), with

- the **data seed** in ``data.synthetic.seed``, ``labels.seed`` and ``labels.judge_errors.seed``: the
  marketplace, hence the test and validation members, the judged pairs and the judge's mistakes;
- the **training seed** in ``train.seed``, ``teacher.seed`` and ``distill.seed``: LoRA initialisation, batch
  order, negatives, the teacher's and the student's.

The cells share one ZenML and MLflow home (``--home``), so the training seeds of a data seed reuse its cached
marketplace and labels. A finished cell's figures (nDCG@10 of every variant on every truth with the
pipeline's 95 % bootstrap interval over queries, the fine-tuned lead over base with its paired interval, the
registered candidate and why, the wall time, the load average before it) are written to
``<out>/d<data>_t<train>.json``; a rerun skips finished cells, so the table can be filled over several
sittings. The report gives every cell's figure with its interval, then the mean and standard deviation over
the cells: the interval is the spread from the test members, the standard deviation the spread from the seeds.
Nothing in it is chosen on test members: the registered candidate is the pipeline's validation winner.

``--ranker RANKER_YAML`` adds, after each cell (and for finished cells without them), the ranker pipeline on the
cell's marketplace and on the model version the cell's run registered (``models:/<name>/<version>``, champion
or not): apply AUC with the standard features, + base and + registered embeddings, and the paired differences,
under ``ranker`` in the cell's JSON and as one more section of the report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("base", "finetuned", "teacher", "distilled")
TRUTHS = {  # metric prefix -> what the truth is
    "": "judge (pooled grades of the rubric judge with its errors)",
    "truth/": "truth (the generator's latent fit, every job)",
    "applies/": "applies (test-period applies only)",
    "unseen/": "unseen world (role families, titles, cities never trained on)",
}
KEEP = ("/ndcg_at_10", "/ndcg_at_10_ci_low", "/ndcg_at_10_ci_high", "finetuned_vs_base_ndcg_delta")
KEEP += tuple(f"finetuned_vs_base_ndcg_delta{end}" for end in ("_ci_low", "_ci_high"))
# the foreign set (jude/data/foreign, a guard: never chosen on): pairwise accuracy, per kind, the lead over base
KEEP_FOREIGN = ("pairwise_accuracy", "pairwise_accuracy_ci_low", "pairwise_accuracy_ci_high")
KEEP_FOREIGN += tuple(f"_vs_base_delta{end}" for end in ("", "_ci_low", "_ci_high"))
FOREIGN_KINDS = ("other_city", "under_qualified", "look_alike")


def cell_name(data_seed: int, train_seed: int) -> str:
    return f"d{data_seed}_t{train_seed}"


def cell_parameters(base: dict, data_seed: int, train_seed: int) -> dict:
    """The config file ``base`` (a train YAML's whole mapping) with the cell's seeds set; ``base`` unchanged."""
    doc = json.loads(json.dumps(base))  # a deep copy of plain YAML data
    p = doc.setdefault("parameters", {})
    data = p.setdefault("data", {})
    data.setdefault("synthetic", {})["seed"] = data_seed
    labels = p.setdefault("labels", {})
    labels["seed"] = data_seed
    labels.setdefault("judge_errors", {})["seed"] = data_seed
    for section in ("train", "teacher", "distill"):
        p.setdefault(section, {})["seed"] = train_seed
    return doc


def kept_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """What the table needs from a run's MLflow metrics: every nDCG@10, its interval ends, the lead over base,
    the validation selection's scores, recall@100 on applies, the foreign set's pairwise accuracy."""
    return {
        k: v
        for k, v in sorted(metrics.items())
        if k.endswith(KEEP)
        or k.startswith("select/")
        or (k.startswith("applies/") and (k.endswith("/recall_at_100") or "_vs_base_recall_at_100_delta" in k))
        or (k.startswith("foreign/") and k.endswith(KEEP_FOREIGN))
    }


def run_cell(config: Path, data_seed: int, train_seed: int, home: Path, out: Path) -> dict:
    """One pipeline run of the cell; its figures, also written to ``out``."""
    cfg_path = home / "configs" / f"{cell_name(data_seed, train_seed)}.yaml"
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(yaml.safe_dump(cell_parameters(yaml.safe_load(config.read_text()), data_seed, train_seed)))
    load = os.getloadavg()[0]
    print(f"cell data {data_seed} train {train_seed}: load average {load:.2f}", flush=True)
    t0 = time.time()
    _run_pipeline("train", cfg_path, home, cell_name(data_seed, train_seed))
    seconds = time.time() - t0
    run = _newest_evaluated_run(_client(home))
    if run is None:
        raise SystemExit(f"cell {cell_name(data_seed, train_seed)}: no MLflow run with evaluation metrics in {home}")
    figures = _write_cell(
        out, config, data_seed, train_seed, run, seconds=round(seconds, 1), load_average_before=round(load, 2)
    )
    print(f"cell data {data_seed} train {train_seed}: {seconds / 60:.1f} min, run {run.info.run_id}", flush=True)
    return figures


def _run_pipeline(pipeline: str, cfg_path: Path, home: Path, name: str) -> None:
    """``run.py --pipeline <pipeline>`` with ``home``'s ZenML and MLflow stores; its output in ``home/logs``."""
    env = {
        **os.environ,
        "JUDE_HOME": str(home),
        "ZENML_CONFIG_PATH": str(home / "zenml"),
        "ZENML_LOCAL_STORES_PATH": str(home / "zenml" / "local_stores"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    log = home / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"{name}: run.py --pipeline {pipeline} (log {log})", flush=True)
    with log.open("w") as fh:
        res = subprocess.run(
            [sys.executable, "run.py", "--pipeline", pipeline, "--config", str(cfg_path)],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    if res.returncode != 0:
        raise SystemExit(f"{name}: run.py --pipeline {pipeline} exited {res.returncode}; see {log}")


RANKER_KEPT = ("standard", "base", "champion", "delta/champion_vs_base", "delta/champion_vs_standard")


def ranker_parameters(base: dict, data_seed: int, train_seed: int, model_uri: str) -> dict:
    """The ranker YAML ``base`` on the cell's marketplace (data and train seeds) and the cell's registered model."""
    doc = json.loads(json.dumps(base))
    p = doc.setdefault("parameters", {})
    p.setdefault("data", {}).setdefault("synthetic", {})["seed"] = data_seed
    p.setdefault("train", {})["seed"] = train_seed
    p.setdefault("ranker", {})["model_uri"] = model_uri
    return doc


def run_ranker(ranker_config: Path, data_seed: int, train_seed: int, home: Path, out: Path) -> dict:
    """The ranker pipeline on the cell's registered model (the version its train run logged, in ``home``);
    its apply AUC per feature set and the paired differences are added to the cell's JSON under ``ranker``."""
    cell = out / f"{cell_name(data_seed, train_seed)}.json"
    figures = json.loads(cell.read_text())
    client = _client(home)
    versions = client.search_model_versions(f"run_id='{figures['mlflow_run_id']}'")
    if len(versions) != 1:
        raise SystemExit(f"--ranker: cell {cell.stem}'s run {figures['mlflow_run_id']} registered {len(versions)} "
                         f"model versions in {home}, expected 1")  # fmt: skip
    mv = versions[0]
    cfg_path = home / "configs" / f"{cell.stem}_ranker.yaml"
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    doc = ranker_parameters(
        yaml.safe_load(ranker_config.read_text()), data_seed, train_seed, f"models:/{mv.name}/{mv.version}"
    )
    cfg_path.write_text(yaml.safe_dump(doc))
    t0 = time.time()
    _run_pipeline("ranker", cfg_path, home, f"{cell.stem}_ranker")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiments,
        "attributes.run_name LIKE 'ranker_pipeline%'",
        order_by=["attribute.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise SystemExit(f"--ranker: no ranker_pipeline run in {home} after cell {cell.stem}")
    metrics = runs[0].data.metrics
    figures["ranker"] = {
        "config": str(ranker_config),
        "model_uri": f"models:/{mv.name}/{mv.version}",
        "mlflow_run_id": runs[0].info.run_id,
        "seconds": round(time.time() - t0, 1),
        "metrics": {
            k: v
            for k, v in sorted(metrics.items())
            if k.removeprefix("ranker/").rsplit("/", 1)[0] in RANKER_KEPT and "apply_auc" in k
        },
    }
    cell.write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"cell data {data_seed} train {train_seed}: ranker run {runs[0].info.run_id} on {mv.name} v{mv.version}",
        flush=True,
    )
    return figures


def _newest_evaluated_run(client):
    """The newest of the store's last 50 runs that logged the evaluation's metrics, or None."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, order_by=["attribute.start_time DESC"], max_results=50)
    return next((r for r in runs if "truth/finetuned/ndcg_at_10" in r.data.metrics), None)


def _write_cell(out: Path, config: Path, data_seed: int, train_seed: int, run, **extra) -> dict:
    """A cell's JSON under ``out``: its seeds, config and run, ``extra`` (timing, provenance), tags and metrics."""
    figures = {
        "data_seed": data_seed,
        "train_seed": train_seed,
        "config": str(config),
        "mlflow_run_id": run.info.run_id,
        **extra,
        "tags": {k: v for k, v in run.data.tags.items() if k.startswith(("select", "distillation"))},
        "metrics": kept_metrics(run.data.metrics),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{cell_name(data_seed, train_seed)}.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def _flat(doc: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def adopt_cell(config: Path, data_seed: int, train_seed: int, tracking_uri: str, out: Path) -> dict:
    """A cell from a train run made elsewhere with the same config and seeds (the fresh-clone path's ``make train``
    is the default config's cell d0 t0), read from that MLflow store: the newest run with evaluation metrics.

    Refused, naming the key, where a parameter the run logged differs from the cell's config (every logged
    ``section.field`` the cell's YAML also sets is compared), or where no such parameter was logged."""
    import mlflow

    run = _newest_evaluated_run(mlflow.MlflowClient(tracking_uri=tracking_uri))
    if run is None:
        raise SystemExit(f"--adopt {tracking_uri}: no MLflow run with evaluation metrics there")
    want = _flat(cell_parameters(yaml.safe_load(config.read_text()), data_seed, train_seed)["parameters"])
    logged = run.data.params
    compared = [k for k in want if k in logged]
    differ = [f"{k}: run {logged[k]!r}, cell {want[k]!r}" for k in compared if str(want[k]) != logged[k]]
    if not compared or differ:
        why = "; ".join(differ) if differ else "none of the cell's keys was logged"
        raise SystemExit(f"--adopt: run {run.info.run_id} is not cell {cell_name(data_seed, train_seed)}: {why}")
    figures = _write_cell(
        out,
        config,
        data_seed,
        train_seed,
        run,
        adopted_from=tracking_uri,
        params_checked=sorted(compared),
        seconds=round((run.info.end_time - run.info.start_time) / 1000, 1) if run.info.end_time else None,
        load_average_before=None,
    )
    print(f"cell data {data_seed} train {train_seed}: adopted run {run.info.run_id} ({len(compared)} params checked)")
    return figures


def _client(home: Path):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / '.jude' / 'mlflow.db'}")


def reread(out: Path, home: Path) -> None:
    """Read every finished cell's metrics again from its MLflow run (after ``KEEP`` grew)."""
    client = _client(home)
    for path in sorted(out.glob("d*_t*.json")):
        cell = json.loads(path.read_text())
        cell["metrics"] = kept_metrics(client.get_run(cell["mlflow_run_id"]).data.metrics)
        path.write_text(json.dumps(cell, indent=2) + "\n")
        print(f"{path.name}: {len(cell['metrics'])} metrics re-read from run {cell['mlflow_run_id']}")


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f} (1 cell)"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def report(cells: list[dict]) -> str:
    """The markdown table: per truth and variant, every cell's nDCG@10 [95 % interval], mean ± std over cells."""
    if not cells:
        return "no cells measured yet\n"
    cells = sorted(cells, key=lambda c: (c["data_seed"], c["train_seed"]))
    names = [f"d{c['data_seed']} t{c['train_seed']}" for c in cells]
    lines = [
        f"{len(cells)} cell(s) (d = data seed, t = training seed); nDCG@10 [95 % bootstrap interval over the test "
        "members]; last column: mean ± standard deviation over the cells",
        "",
    ]
    for prefix, what in TRUTHS.items():
        lines += [f"**{what}**", "", "| variant | " + " | ".join(names) + " | mean ± std |"]
        lines.append("| --- " * (len(names) + 2) + "|")
        for variant in VARIANTS:
            key = f"{prefix}{variant}/ndcg_at_10"
            row, values = [], []
            for c in cells:
                m = c["metrics"]
                if key not in m:
                    row.append("–")
                    continue
                values.append(m[key])
                row.append(f"{m[key]:.4f} [{m[key + '_ci_low']:.3f}, {m[key + '_ci_high']:.3f}]")
            lines.append(f"| {variant} | " + " | ".join(row) + f" | {_mean_std(values) if values else '–'} |")
        ratio, ratios, lead = [], [], []
        for c in cells:
            m = c["metrics"]
            b, f = m.get(f"{prefix}base/ndcg_at_10"), m.get(f"{prefix}finetuned/ndcg_at_10")
            ratios += [f / b] if b and f is not None else []
            ratio.append(f"{f / b:.2f}x" if b and f is not None else "–")
            d = f"{prefix}finetuned_vs_base_ndcg_delta"
            lead.append(f"{m[d]:+.4f} [{m[d + '_ci_low']:+.3f}, {m[d + '_ci_high']:+.3f}]" if d in m else "–")
        spread = f"{statistics.mean(ratios):.2f}x ± {statistics.stdev(ratios):.2f}" if len(ratios) > 1 else "–"
        lines.append("| fine-tuned / base | " + " | ".join(ratio) + f" | {spread} |")
        lines.append("| fine-tuned − base (paired) | " + " | ".join(lead) + " | |")
        lines.append("")
    lines += _foreign_and_recall(cells, names)
    lines += _ranker_section(cells, names)
    lines.append("registered (the validation winner) and the time of each cell:")
    lines.append("")
    for name, c in zip(names, cells, strict=True):
        tags = c["tags"]
        lines.append(
            f"- {name}: {tags.get('selected_candidate', '?')} ({tags.get('selection_reason', 'no reason logged')}); "
            f"teacher ahead on validation: {tags.get('distillation_meaningful', '?')}; "
            + (
                f"{c['seconds'] / 60:.1f} min at load {c['load_average_before']:.2f}; "
                if c.get("load_average_before") is not None
                else f"{c['seconds'] / 60:.1f} min (adopted from {c.get('adopted_from', '?')}, load not recorded); "
            )
            + f"MLflow run {c['mlflow_run_id']}"
        )
    return "\n".join(lines) + "\n"


def _cell_figure(m: dict, key: str) -> tuple[str, float | None]:
    """``0.8000 [0.760, 0.840]`` (a lead over base: signed), or ``–`` when the cell did not log ``key``."""
    if key not in m:
        return "–", None
    sign = "+" if "_vs_" in key else ""
    low, high = m.get(key + "_ci_low"), m.get(key + "_ci_high")
    spread = f" [{low:{sign}.3f}, {high:{sign}.3f}]" if low is not None and high is not None else ""
    return f"{m[key]:{sign}.4f}{spread}", m[key]


def _figure_section(
    title: str, first: str, rows: list[tuple[str, str]], cells: list[dict], names: list[str]
) -> list[str]:
    """A markdown table of ``rows`` (label, metric key): each cell's figure and the mean ± std over the cells; a
    row no cell logged is left out, and the whole section when none is logged."""
    if not any(key in c["metrics"] for _, key in rows for c in cells):
        return []
    lines = [title, "", f"| {first} | " + " | ".join(names) + " | mean ± std |", "| --- " * (len(names) + 2) + "|"]
    for label, key in rows:
        figs = [_cell_figure(c["metrics"], key) for c in cells]
        values = [v for _, v in figs if v is not None]
        if values:
            lines.append(f"| {label} | " + " | ".join(t for t, _ in figs) + f" | {_mean_std(values)} |")
    return lines + [""]


def _foreign_and_recall(cells: list[dict], names: list[str]) -> list[str]:
    """The foreign set's pairwise accuracy (all pairs, then each hard kind) and the lead over base, and recall@100
    on the test period's applies; rows only for what the cells logged."""
    rows: list[tuple[str, str]] = []
    for variant in VARIANTS:
        rows.append((f"{variant}: all", f"foreign/{variant}/pairwise_accuracy"))
        rows += [(f"{variant}: {k}", f"foreign/{variant}/{k}/pairwise_accuracy") for k in FOREIGN_KINDS]
    rows += [(f"{v} − base (paired)", f"foreign/{v}_vs_base_delta") for v in VARIANTS if v != "base"]
    foreign_title = (
        "**foreign set (jude/data/foreign: occupations, places and writing the generator never uses; a guard, "
        "never chosen on): pairwise accuracy [95 % interval over its members]**"
    )
    recall = [(v, f"applies/{v}/recall_at_100") for v in VARIANTS]
    recall += [(f"{v} − base (paired)", f"applies/{v}_vs_base_recall_at_100_delta") for v in VARIANTS if v != "base"]
    return _figure_section(foreign_title, "row", rows, cells, names) + _figure_section(
        "**recall@100 on the test period's applies**", "variant", recall, cells, names
    )


def _ranker_section(cells: list[dict], names: list[str]) -> list[str]:
    """The ranker pipeline's apply AUC per feature set and the champion's paired lead, for cells run with
    ``--ranker`` (the cell's registered model as the champion); nothing when no cell has them."""
    rows = [
        ("standard features", "ranker/standard/apply_auc"),
        ("+ base embeddings", "ranker/base/apply_auc"),
        ("+ registered model's embeddings", "ranker/champion/apply_auc"),
        ("registered − base (paired)", "ranker/delta/champion_vs_base/apply_auc"),
        ("registered − standard (paired)", "ranker/delta/champion_vs_standard/apply_auc"),
    ]
    ranker_cells = [{"metrics": c.get("ranker", {}).get("metrics", {})} for c in cells]
    title = "**the ranker (configs/ranker.yaml on the cell's marketplace and registered model): apply AUC [95 %]**"
    return _figure_section(title, "feature set", rows, ranker_cells, names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "train.yaml")
    ap.add_argument("--data-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cells", nargs="+", help="data:train pairs to run (default: every pair of the seeds)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "seed_table", help="the cells' JSON")
    ap.add_argument("--home", type=Path, default=ROOT / ".jude" / "bench" / "seed_table", help="ZenML/MLflow home")
    ap.add_argument("--report", action="store_true", help="only print the table of the cells in --out")
    ap.add_argument("--reread", action="store_true", help="re-read the cells' metrics from their MLflow runs")
    ap.add_argument(
        "--adopt",
        metavar="TRACKING_URI",
        help="take the one cell of --cells from the newest train run in this MLflow store instead of running it "
        "(e.g. sqlite:////tmp/fresh/.jude/mlflow.db after bench/fresh_clone_path.py: the default config's d0 t0)",
    )
    ap.add_argument(
        "--ranker",
        type=Path,
        metavar="RANKER_YAML",
        help="after each cell, the ranker pipeline (e.g. configs/ranker.yaml) on the cell's registered model and "
        "marketplace, in the same --home; also for cells measured already that have no ranker figures yet",
    )
    args = ap.parse_args()
    if args.reread:
        reread(args.out, args.home.resolve())
        args.report = True
    if args.cells:
        try:
            todo = [tuple(int(x) for x in c.split(":")) for c in args.cells]
        except ValueError:
            raise SystemExit(f"--cells: expected data:train pairs of integers such as 1:0, got {args.cells}") from None
    else:
        todo = [(d, t) for d in args.data_seeds for t in args.train_seeds]
    if args.adopt:
        if len(todo) != 1:
            raise SystemExit(f"--adopt takes exactly one cell (--cells D:T), got {len(todo)}")
        adopt_cell(args.config.resolve(), *todo[0], args.adopt, args.out)
        args.report = True
    if not args.report:
        for d, t in todo:
            cell = args.out / f"{cell_name(d, t)}.json"
            if cell.exists():
                print(f"cell data {d} train {t}: measured already ({args.out})", flush=True)
            else:
                run_cell(args.config.resolve(), d, t, args.home.resolve(), args.out)
            if args.ranker and "ranker" not in json.loads(cell.read_text()):
                run_ranker(args.ranker.resolve(), d, t, args.home.resolve(), args.out)
    cells = [json.loads(p.read_text()) for p in sorted(args.out.glob("d*_t*.json"))] if args.out.exists() else []
    print(report(cells))


if __name__ == "__main__":
    main()
