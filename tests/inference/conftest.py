"""A tiny image folder and models trained on it (once per session) for the inference tests."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, script_env

CLASSES = ("boot", "shirt", "trouser")


def run_cli(command: str, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python scripts/<command>.py args`` in a subprocess."""
    return subprocess.run([sys.executable, str(REPO / "scripts" / f"{command}.py"), *map(str, args)],
                          capture_output=True, text=True, env=script_env(), timeout=timeout)


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """train/<class>/*.png and test/<class>/*.png (16 px, some 20x24 to exercise resize and crop) + taxonomy."""
    root = tmp_path_factory.mktemp("inference_folder")
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 6)):
        for i in range(n):
            cls = CLASSES[i % 3]
            d = root / split / cls
            d.mkdir(parents=True, exist_ok=True)
            shape = (20, 24, 3) if i % 4 == 0 else (16, 16, 3)
            base = np.zeros(shape) + 80 * (i % 3)
            Image.fromarray(np.clip(base + rng.integers(0, 120, shape), 0, 255).astype(np.uint8)).save(d / f"{i}.png")
    (root / "taxonomy.txt").write_text("clothing footwear\nclothing garment\nfootwear boot\ngarment shirt\ngarment trouser\n")
    (root / "names.txt").write_text("boot Boot\nshirt Shirt\ntrouser Trousers\nfootwear Footwear\ngarment Garment\nclothing Clothing\n")
    return root


@pytest.fixture(scope="session")
def trained(image_folder, tmp_path_factory):
    """A model with a 'prob' head trained for one step on the folder; dumps in .keras, .h5 and .weights.h5."""
    from semembed.training import TrainConfig
    from semembed.training.run import train

    out = tmp_path_factory.mktemp("inference_models")
    result = train(TrainConfig(dataset="imagefolder", data_root=str(image_folder), target_size=16, crop_size=16,
                               architecture="simple-tiny", cls_weight=0.1, epochs=1, max_steps_per_epoch=1,
                               batch_size=6, no_progress=True, model_dump=str(out / "m.keras"),
                               weight_dump=str(out / "m.weights.h5")))
    from semembed.training.export import save_model

    save_model(result.model, str(out / "m.h5"), metadata=None)  # a weights-only file that carries nothing
    from semembed.data import get_dataset

    ds = get_dataset("imagefolder", str(image_folder), target_size=16, crop_size=16)
    return {"dir": out, "result": result, "test_files": list(ds.test_files), "classes": list(ds.classes)}
