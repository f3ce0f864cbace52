"""plot_hierarchy and plot_recall_precision: files written, layouts checked, errors named."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from tests.conftest import REPO, script_env

FASHION = REPO / "hierarchies" / "fashion_mnist"


def run(program, *args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / f"{program}.py"), *map(str, args)],
                          capture_output=True, text=True, env=script_env(), timeout=300)


def test_layout_places_children_right_of_parents_and_leaves_on_rows():
    from semembed.taxonomy import load_hierarchy
    from semembed.taxonomy.drawing import layout, to_dot

    h = load_hierarchy(FASHION / "fashion_mnist.parent-child.txt")
    x, y = layout(h)
    cp = h.child_to_parent.tocoo()
    assert all(x[c] > x[p] for c, p in zip(cp.row, cp.col))
    leaves = np.flatnonzero(h.num_children == 0)
    assert sorted(y[leaves].tolist()) == list(range(len(leaves)))  # one row per leaf
    inner = np.flatnonzero(h.num_children > 0)
    for i in inner:
        kids = cp.row[cp.col == i]
        assert y[i] == np.mean(y[kids])
    dot = to_dot(h, {0: "T-shirt/top"})
    assert dot.count("->") == len(cp.row) and 'label="T-shirt/top"' in dot and "rankdir=LR" in dot


def test_plot_hierarchy_cli(tmp_path):
    r = run("plot_hierarchy", "--hierarchy", FASHION / "fashion_mnist.parent-child.txt", "--class_names",
            FASHION / "class_names.txt", "--out", tmp_path / "h.svg", "--engine", "matplotlib")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "h.svg").read_text().lstrip().startswith("<?xml") and "Ankle" in (tmp_path / "h.svg").read_text()
    r = run("plot_hierarchy", "--hierarchy", FASHION / "fashion_mnist.parent-child.txt", "--out", tmp_path / "h.jpg")
    assert r.returncode == 2 and ".svg, .png or .pdf" in r.stderr
    # the taxonomy given as the names file: ids named twice are refused, naming the line
    r = run("plot_hierarchy", "--hierarchy", FASHION / "fashion_mnist.parent-child.txt", "--class_names",
            FASHION / "fashion_mnist.parent-child.txt", "--out", tmp_path / "h2.svg", "--engine", "matplotlib")
    assert r.returncode == 2 and "is named a second time" in r.stderr and "line 2" in r.stderr, r.stderr


def test_plot_recall_precision_cli(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 12)
    for name, noise in (("good", 0.3), ("bad", 3.0)):
        centres = rng.standard_normal((10, 8))
        np.savez(tmp_path / f"{name}.npz", feat=centres[labels] + noise * rng.standard_normal((120, 8)), labels=labels)
    out = tmp_path / "pr.png"
    r = run("plot_recall_precision", "--feat", tmp_path / "good.npz", "--feat", tmp_path / "bad.npz",
            "--hierarchy", FASHION / "fashion_mnist.parent-child.txt", "--bins", "20", "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.stat().st_size > 5000
    maps = dict(line.split(": mAP ") for line in r.stdout.splitlines() if ": mAP " in line)
    assert float(maps["good"]) > float(maps["bad"])
    r = run("plot_recall_precision", "--feat", tmp_path / "good.npz", "--label", "a", "--label", "b", "--out", tmp_path / "x.png")
    assert r.returncode == 2 and "2 --label values but only 1 --feat" in r.stderr
