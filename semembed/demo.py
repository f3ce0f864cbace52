"""The end-to-end demo: semantic embeddings versus a softmax baseline, offline, in minutes.

On the embedded default dataset (Fashion-MNIST when installed, else
scikit-learn's digits) and its shipped taxonomy it

1. computes the class embeddings (``unitsphere``),
2. trains a network onto them with the ``prob`` head (cosine-style ``inv_corr`` + 0.1 x cross-entropy),
3. trains the same network as a plain softmax classifier with the same budget,
4. evaluates both: retrieval (mAHP@250, P@k, mAP) and classification (accuracy,
   balanced and hierarchical accuracy, mistake severity),
5. writes ``results.md``/``results.json``/``results.csv`` and ``hierarchical_precision.png``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semembed.io import atomic_write_text

REPO_HIERARCHIES = Path(__file__).resolve().parents[1] / "hierarchies"
TAXONOMIES = {
    "fashion-mnist": "fashion_mnist/fashion_mnist.parent-child.txt",
    "digits": "digits/digits.parent-child.txt",
}
TABLE_METRICS = [
    ("mAHP@250", "AHP@250 (LCS_HEIGHT)"),
    ("HP@1", "P@1 (LCS_HEIGHT)"),
    ("HP@100", "P@100 (LCS_HEIGHT)"),
    ("mAP", "AP"),
    ("Accuracy", "Accuracy"),
    ("Balanced acc.", "Avg. Accuracy"),
    ("Hierarchical acc.", "Hierarchical Accuracy"),
    ("Mistake severity", "Mistake Severity"),
]


@dataclass(frozen=True)
class Recipe:
    """A training budget under which both of the demo's models are properly trained on one dataset.

    Both models use SGD with momentum 0.9 and a per-step cosine decay from
    ``lr`` to 0 (the reference's per-epoch SGDR spends the last epoch of a
    short run at its minimum rate).  The semantic model's head learns at
    10 × the rate (1 / ``cls_weight``): its own layers see only the
    cross-entropy weighted 0.1, and at a short budget they lag behind.
    """

    epochs: int
    batch_size: int
    lr: float
    max_steps_per_epoch: int | None = None  # None: whole epochs


#: the demo's budget per dataset (chosen with bench/demo_recipes.py; see the README)
RECIPES = {
    "fashion-mnist": Recipe(epochs=3, batch_size=128, lr=0.05),
    "digits": Recipe(epochs=30, batch_size=32, lr=0.05),
}


@dataclass
class DemoConfig:
    """What ``semembed demo`` runs; ``None`` fields take the dataset's :data:`RECIPES` value."""

    out_dir: str = "runs/demo"
    dataset: str | None = None  # None: the embedded default (Fashion-MNIST if available, else digits)
    architecture: str = "simple-tiny"
    epochs: int | None = None
    batch_size: int | None = None
    max_steps_per_epoch: int | None = None  # 0: whole epochs
    lr: float | None = None
    seed: int = 0
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        """Refuse bad numbers and an unknown architecture before anything is computed or written.

        ``None`` takes the recipe's value; 0 or a negative number is an error (``max_steps_per_epoch``:
        0 means whole epochs, as documented).

        Raises:
            SemembedError: naming the flag, e.g. ``--epochs must be a positive integer, got 0``.
        """
        from semembed.cli._checks import check_architecture
        from semembed.validation import check_int, check_number

        recipe = " (leave it out for the dataset's recipe)"
        check_int("--epochs", self.epochs, 1, optional=True, note=recipe)
        check_int("--batch_size", self.batch_size, 1, optional=True, note=recipe)
        check_number("--lr", self.lr, 0, low_open=True, optional=True, note=recipe)
        check_int("--max_steps_per_epoch", self.max_steps_per_epoch, 0, optional=True,
                  note=" (0 or leaving it out: whole epochs)")
        check_int("--seed", self.seed, 0)
        check_architecture(self.architecture)

    def recipe(self, dataset: str) -> Recipe:
        """The dataset's :data:`RECIPES` entry with the given (not None) fields put in."""
        base = RECIPES[dataset]
        pick = lambda value, default: default if value is None else value  # noqa: E731
        steps = base.max_steps_per_epoch if self.max_steps_per_epoch is None else (self.max_steps_per_epoch or None)
        return Recipe(epochs=pick(self.epochs, base.epochs), batch_size=pick(self.batch_size, base.batch_size),
                      lr=pick(self.lr, base.lr), max_steps_per_epoch=steps)


def taxonomy_for(dataset: str) -> Path:
    return REPO_HIERARCHIES / TAXONOMIES[dataset.lower()]


def run_demo(config: DemoConfig) -> dict:
    """Run the whole comparison; returns ``{model label: {metric: value}}``."""
    config.check()  # numbers and the architecture: before the embedding is computed or anything written
    from semembed.class_embeddings import compute_class_embedding, save_class_embedding
    from semembed.data.registry import choose_default_dataset
    from semembed.io import check_overwrite
    from semembed.taxonomy import load_hierarchy
    from semembed.training.config import TrainConfig
    from semembed.training.run import train
    from semembed.training.schedules import ScheduleConfig

    out = Path(config.out_dir)
    results_md = out / "results.md"
    check_overwrite(results_md, config.overwrite, flag="--overwrite")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    if config.dataset is None:
        dataset, root, why = choose_default_dataset(download=True)
    else:
        dataset, root, why = config.dataset.lower(), None, "chosen with --dataset"
    if dataset not in TAXONOMIES:
        from semembed.errors import SemembedError

        raise SemembedError(f"--dataset {config.dataset!r}: the demo ships taxonomies for {', '.join(TAXONOMIES)} only")
    recipe = config.recipe(dataset)
    hierarchy = load_hierarchy(taxonomy_for(dataset))
    embedding, report = compute_class_embedding(hierarchy, method="unitsphere")
    emb_path = out / "class_embedding.pickle"
    save_class_embedding(embedding, emb_path, overwrite=True)
    print(f"[demo] dataset {dataset} ({why}), taxonomy {taxonomy_for(dataset).name}")
    for line in report.lines():
        print(f"[demo] {line}")

    schedule = ScheduleConfig(name="cosine", cosine_max_lr=recipe.lr, cosine_min_lr=0.0)
    common = dict(
        dataset=dataset, data_root=root, architecture=config.architecture, schedule=schedule,
        epochs=recipe.epochs, batch_size=recipe.batch_size, max_steps_per_epoch=recipe.max_steps_per_epoch,
        seed=config.seed, no_progress=not config.progress, overwrite=True,
    )
    print(f"[demo] budget of each model: {recipe.epochs} epochs, batch {recipe.batch_size}, SGD lr {recipe.lr} "
          f"with per-step cosine decay" + (f", at most {recipe.max_steps_per_epoch} steps per epoch"
                                           if recipe.max_steps_per_epoch else ""))
    runs = {
        "semantic embeddings + head": TrainConfig(task="embedding", embedding=str(emb_path), loss="inv_corr",
                                                  cls_weight=0.1, cls_lr_multiplier=10.0, **common),
        "softmax baseline": TrainConfig(task="classifier", embedding="onehot", **common),
    }
    results: dict[str, dict] = {}
    curves: dict[str, np.ndarray] = {}
    for label, cfg in runs.items():
        print(f"[demo] training: {label} ({cfg.architecture}, {cfg.epochs} epochs)")
        res = train(cfg)
        metrics, curve = evaluate_run(res, hierarchy, embedding.ind2label)
        results[label] = metrics
        curves[label] = curve

    write_results(out, results, curves, dataset, time.perf_counter() - start)
    return results


def evaluate_run(res, hierarchy, class_ids) -> tuple[dict, np.ndarray]:
    """Retrieval metrics on the test features and classification metrics on the head's probabilities."""
    from semembed.evaluation import classification_metrics, retrieval_metrics
    from semembed.evaluation.report import hp_curve

    class_ids = list(class_ids)
    labels = np.asarray(res.test_labels)
    ids = [class_ids[i] for i in labels]
    ret = retrieval_metrics(res.features, ids, hierarchy, normalize=True, ks=range(1, 251), clip_ahp=250,
                            similarities=("LCS_HEIGHT",))
    cls = classification_metrics(labels, res.probabilities, hierarchy, class_ids)
    keep = {k: v for k, v in ret.items() if not k.startswith("P@") or k in ("P@1 (LCS_HEIGHT)", "P@10 (LCS_HEIGHT)", "P@100 (LCS_HEIGHT)")}
    return {**keep, **cls}, hp_curve(ret, "LCS_HEIGHT")


def format_results(results: dict) -> str:
    header = "| model | " + " | ".join(name for name, _ in TABLE_METRICS) + " |"
    lines = [header, "|" + "---|" * (len(TABLE_METRICS) + 1)]
    for label, m in results.items():
        cells = [f"{m[key]:.4f}" if key in m else "–" for _, key in TABLE_METRICS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(out: Path, results: dict, curves: dict, dataset: str, seconds: float) -> None:
    from semembed.evaluation.report import plot_hierarchical_precision

    table = format_results(results)
    md = (f"# semembed demo: {dataset}\n\nTotal time {seconds:.0f} s. Retrieval: every test image queries all others "
          f"(L2-normalised features, LCS-height similarity). Mistake severity: mean LCA height of wrong predictions "
          f"(lower is better).\n\n{table}\n")
    atomic_write_text(out / "results.md", md, overwrite=True)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2, sort_keys=True), overwrite=True)
    csv = ["model;" + ";".join(name for name, _ in TABLE_METRICS)]
    csv += [f"{label};" + ";".join(str(m.get(key, "")) for _, key in TABLE_METRICS) for label, m in results.items()]
    atomic_write_text(out / "results.csv", "\n".join(csv) + "\n", overwrite=True)
    mahp = {label: m["AHP@250 (LCS_HEIGHT)"] for label, m in results.items()}
    plot_hierarchical_precision(curves, mahp, out / "hierarchical_precision.png", mahp_name="mAHP@250")
    print(table)
    print(f"[demo] wrote {out / 'results.md'}, results.json, results.csv and {out / 'hierarchical_precision.png'} "
          f"in {seconds:.0f} s")
