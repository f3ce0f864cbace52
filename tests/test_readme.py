"""The README as a contract: its cheap examples run as written, from a fresh directory.

Every ``bash`` block line that starts a program (``semembed ...``, ``python ...``) and every
``python`` block is collected. Each runs in a temporary directory that holds a copy of the shipped
``hierarchies/`` and ``embeddings/`` (so an example that writes there cannot touch the repository),
with ``semembed`` run as ``python -m semembed`` and ``scripts/`` taken from the repository.
Examples that need data the repository does not ship, or that train for minutes, are listed in
``SKIP`` with the reason; a new example is run unless it is listed there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, script_env

README = REPO / "README.md"

# substring of the example (first line for Python blocks) -> why it is not run here
SKIP = {
    "-m venv .venv": "installs packages and runs the demo (minutes); .ci/run does this",
    "semembed demo": "trains two models (minutes); tests/training/test_demo.py runs the demo on a small budget",
    "--dataset CIFAR-100 --data_root /data/cifar-100-python": "needs the CIFAR-100 files and hours of training",
    "--dataset CUB --data_root /data/CUB_200_2011": "needs the CUB-200-2011 images",
    "--data_root /data/tiny": "needs the user's image folder (tests/training/test_sizes_and_early_checks.py runs these flags)",
    "--data_root /data/zs": "needs a zero-shot image folder (tests/training/test_learn_metric_cli.py runs this command line)",
    "explain --model m.keras": "needs an AVSL model trained on a folder (tests/inference/test_explain.py runs explain)",
    "--loss proxy_anchor --architecture simple-tiny": "trains 60 Fashion-MNIST epochs (tests/training/"
        "test_learn_metric_cli.py sets it up as written and trains it for 2 steps)",
    "--xbm_size 8192 --xbm_start 1000": "trains 60 Fashion-MNIST epochs (tests/training/test_learn_metric_cli.py "
        "sets it up as written)",
    "TF_CONFIG=": "needs a second machine (tests/training/test_distributed.py runs two workers on localhost)",
    "--labels test_labels.json": "needs the user's feature and label files (tests/evaluation/test_eval_cli.py runs these flags)",
    "from semembed.training import TrainConfig": "trains for 5 full Fashion-MNIST epochs (minutes)",
    "from semembed.data import get_dataset, default_dataset": "needs the CUB-200-2011 images",
    "from semembed.models import load_reference_model\nmodel = load_reference_model(":
        "needs the reference's released .h5 files (downloaded separately)",
    "from PIL import Image": "needs a released ILSVRC model and an image file",
    "--data_root /data/tiny": "needs a folder of the user's images",
    "--model runs/fashion.keras": "needs a trained model and image folders (tests/inference/test_inference.py runs "
                                  "embed, predict, index and search on one)",
    "--index gallery.idx": "needs an index of the user's images (tests/inference/test_inference.py runs search)",
    "--model resnet110wfc.h5": "needs the reference's released .h5 files (downloaded separately)",
    "/data/fashion_web/": "needs the web image folders bench/weakshot.py writes (tests/weakshot/test_weakshot_cli.py "
                          "runs learn_simnet, compute_sample_weights and the graph flags on generated folders)",
    "--feat softmax.npz": "needs the user's feature dumps (tests/test_plots_cli.py runs plot_recall_precision)",
    "--json runs/hierarchy_losses/results.json": "needs the output of bench/hierarchy_losses.py "
                                                 "(tests/training/test_hierarchy_cli.py runs plot_tradeoff)",
}


def readme_blocks() -> list[tuple[str, int, str]]:
    """(language, first line number, text) of each fenced block."""
    blocks, lang, start, body = [], None, 0, []
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if fence and lang is None:
            lang, start, body = fence.group(1) or "text", number + 1, []
        elif fence:
            blocks.append((lang, start, textwrap.dedent("\n".join(body))))
            lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def bash_commands() -> list[tuple[int, str]]:
    """Program calls of the bash blocks, continuation lines joined."""
    out = []
    for lang, start, text in readme_blocks():
        if lang != "bash":
            continue
        lines, pending, first = text.splitlines(), "", None
        for offset, line in enumerate(lines):
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if not pending:
                first = start + offset
            pending += (" " if pending else "") + stripped.rstrip("\\").strip()
            if not stripped.endswith("\\"):
                if re.match(r"^(semembed |python3? |TF_CONFIG=)", pending):
                    out.append((first, pending))
                pending = ""
    return out


def python_blocks() -> list[tuple[int, str]]:
    return [(start, text) for lang, start, text in readme_blocks() if lang == "python"]


def skip_reason(text: str) -> str | None:
    for key, reason in SKIP.items():
        if key in text:
            return reason
    return None


def params(items):
    out = []
    for line, text in items:
        reason = skip_reason(text)
        marks = [pytest.mark.skip(reason=f"README line {line}: {reason}")] if reason else []
        out.append(pytest.param(text, id=f"line{line}", marks=marks))
    return out


@pytest.fixture(scope="module")
def shipped_copy(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("shipped")
    for name in ("hierarchies", "embeddings"):
        shutil.copytree(REPO / name, d / name)
    return d


@pytest.fixture
def workdir(tmp_path, shipped_copy) -> Path:
    for name in ("hierarchies", "embeddings"):
        (tmp_path / name).symlink_to(shipped_copy / name)
    (tmp_path / "scripts").symlink_to(REPO / "scripts")
    return tmp_path


def as_argv_prefix(command: str) -> str:
    """``semembed X`` -> this interpreter's ``-m semembed X``; ``python``/``python3`` -> this interpreter."""
    exe = sys.executable
    command = re.sub(r"^semembed ", f"{exe} -m semembed ", command)
    return re.sub(r"^python3? ", f"{exe} ", command)


@pytest.mark.parametrize("command", params(bash_commands()))
def test_readme_command(command, workdir):
    r = subprocess.run(as_argv_prefix(command), shell=True, cwd=workdir, capture_output=True, text=True,
                       env=script_env(), timeout=120)
    assert r.returncode == 0, f"{command}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"


@pytest.mark.parametrize("code", params(python_blocks()))
def test_readme_python_block(code, workdir):
    r = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True,
                       env=script_env(), timeout=180)
    assert r.returncode == 0, f"{code}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"


def test_every_example_is_found():
    """Guard against the extractor silently finding nothing (e.g. a changed fence style)."""
    assert len(bash_commands()) >= 10 and len(python_blocks()) >= 6


def test_skip_list_has_no_stale_entries():
    texts = [t for _, t in bash_commands()] + [t for _, t in python_blocks()]
    stale = [key for key in SKIP if not any(key in t for t in texts)]
    assert not stale, f"SKIP entries that match no README example: {stale}"


def test_shipped_paths_named_in_examples_exist():
    """Every hierarchies/... or embeddings/... path in an example exists; no example writes into them."""
    missing, writes = [], []
    for _, _, text in readme_blocks():
        for match in re.finditer(r"(--out\s+)?\b((?:hierarchies|embeddings)/[\w.+{},/-]+)", text):
            path = match.group(2).rstrip(".,")
            if match.group(1):
                writes.append(path)
            elif "{" not in path and not (REPO / path).exists():
                missing.append(path)
    assert not missing, f"README examples name files that are not shipped: {missing}"
    assert not writes, f"README examples overwrite shipped files: {writes}"


def test_every_listed_command_has_a_script_and_help():
    text = README.read_text(encoding="utf-8")
    listed = re.search(r"Commands: (.*?)\.\n", text, re.S).group(1).split(". ")[0]
    commands = re.findall(r"`(\w+)`", listed)
    assert "demo" in commands and len(commands) >= 5
    for name in commands:
        script = REPO / "scripts" / f"{name}.py"
        assert script.is_file(), f"README lists `{name}` but scripts/{name}.py is missing"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--help"], capture_output=True, text=True,
                       env=script_env(), timeout=60)
    assert r.returncode == 0 and "usage:" in r.stdout
