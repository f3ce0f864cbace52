"""m-per-class batches, dict batches with per-sample weights, and the --sample_weights reader."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from semembed.data import get_dataset
from semembed.data.samplers import MPerClassSampler
from semembed.data.weights import read_sample_weights
from semembed.errors import SemembedError


def test_m_per_class_batches():
    labels = np.repeat(np.arange(7), [10, 3, 8, 8, 2, 9, 6])
    s = MPerClassSampler(m=4, batch_size=12)
    order = s.epoch_order(labels, epoch=0, seed=5)
    assert len(order) == (len(labels) // 12) * 12
    for batch in order.reshape(-1, 12):
        groups = labels[batch].reshape(3, 4)
        assert (groups == groups[:, :1]).all()  # contiguous groups of one class
        assert len(set(groups[:, 0])) == 3  # distinct classes
        for cls, idx in zip(groups[:, 0], batch.reshape(3, 4)):
            if (labels == cls).sum() >= 4:
                assert len(set(idx)) == 4  # without replacement when the class is big enough
    np.testing.assert_array_equal(order, s.epoch_order(labels, epoch=0, seed=5))  # pure function of (seed, epoch)
    assert not np.array_equal(order, s.epoch_order(labels, epoch=1, seed=5))
    # every class is drawn about equally often over many epochs
    counts = np.bincount(np.concatenate([labels[s.epoch_order(labels, e, 0)] for e in range(200)]), minlength=7)
    assert counts.min() / counts.max() > 0.85
    # shards are the contiguous halves of every global batch: class groups stay together
    halves = [s.shard(order, 2, i).reshape(-1, 6) for i in range(2)]
    np.testing.assert_array_equal(np.concatenate(halves, axis=1).ravel(), order)


def test_m_per_class_errors():
    with pytest.raises(SemembedError, match="not a multiple of --m_per_class"):
        MPerClassSampler(m=4, batch_size=10)
    s = MPerClassSampler(m=2, batch_size=8)
    with pytest.raises(SemembedError, match="need 4 classes"):
        s.check(np.array([0, 0, 1, 1, 2, 2]))
    with pytest.raises(SemembedError, match="class groups would be split"):
        MPerClassSampler(m=4, batch_size=8).check(np.repeat(np.arange(4), 4), replicas=4)


def test_dict_batches_carry_aligned_weights_and_indices():
    ds = get_dataset("digits")
    w = np.linspace(0, 1, ds.num_train).astype("float32")
    seen = []
    for batch in ds.train_dataset(64, epoch=2, seed=3, as_dict=True, weights=w):
        idx = batch["index"].numpy()
        np.testing.assert_array_equal(batch["label"].numpy(), ds.train_labels[idx])
        np.testing.assert_array_equal(batch["weight"].numpy(), w[idx])
        seen.append(idx)
    assert sorted(np.concatenate(seen)) == list(range(ds.num_train))
    sampler = MPerClassSampler(m=4, batch_size=32)
    batch = next(iter(ds.train_dataset(32, epoch=0, as_dict=True, sampler=sampler)))
    np.testing.assert_array_equal(batch["index"].numpy(), sampler.epoch_order(ds.train_labels, 0, 0)[:32])


@pytest.fixture()
def folder(tmp_path):
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            d = tmp_path / split / c
            d.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(d / f"{i}.png")
    return tmp_path


def test_sample_weights_by_path_and_index(folder, tmp_path):
    ds = get_dataset("imagefolder", str(folder))
    rows = ["path,weight,source", "train/cat/0.png,0.5,web", f"{folder}/train/dog/2.png,0,web"]
    (tmp_path / "w.csv").write_text("\n".join(rows) + "\n")
    sw = read_sample_weights(str(tmp_path / "w.csv"), ds, str(folder))
    want = np.ones(ds.num_train, "float32")
    for name, value in (("cat/0.png", 0.5), ("dog/2.png", 0.0)):
        want[[i for i, f in enumerate(ds.train_files) if f.endswith(name)][0]] = value
    np.testing.assert_array_equal(sw.weights, want)
    assert sw.unlisted == ds.num_train - 2 and "2 images listed" in sw.summary()
    digits = get_dataset("digits")
    (tmp_path / "i.csv").write_text("\ufeffindex,weight\n0,2\n5,0\n")
    sw = read_sample_weights(str(tmp_path / "i.csv"), digits)
    assert sw.weights[0] == 2 and sw.weights[5] == 0 and sw.weights.sum() == digits.num_train - 2 + 2
    (tmp_path / "f.csv").write_text("index,weight\n0,1\n1.5,1\n")
    with pytest.raises(SemembedError, match=r"line 3: index '1.5' is not an integer"):
        read_sample_weights(str(tmp_path / "f.csv"), digits)
    link = tmp_path / "link"
    link.symlink_to(folder)  # absolute paths through the real folder, data_root through a symlink
    sw = read_sample_weights(str(tmp_path / "w.csv"), get_dataset("imagefolder", str(link)), str(link))
    assert (sw.weights == 0).sum() == 1


@pytest.mark.parametrize("text,message", [
    ("file,weight\na.png,1\n", "header with the columns 'path'"),
    ("path,weight\ntrain/cat/0.png,x\n", r"line 2: weight 'x' is not a number"),
    ("path,weight\ntrain/cat/0.png,1\ntrain/cat/1.png,-1\n", r"line 3: weight -1.0 must be finite"),
    ("path,weight\ntrain/cat/0.png,1\ntrain/cow/1.png,1\n", r"line 3: 'train/cow/1.png' is not a training image"),
    ("path,weight\ntrain/cat/0.png,1\ntrain/cat/0.png,1\n", "lines 2 and 3: the same image twice"),
    ("", "empty"),
    ("path,weight\n\n\ntrain/cat/0.png,1\n\ntrain/cat/1.png,x\n", r"line 6: weight 'x'"),  # blank lines counted
    ("path,weight\ntrain/cat/0.png,1e39\n", r"line 2: weight 1e\+39 must be finite, >= 0 and fit float32"),
    ("path,class,weight\n", "a header but no rows"),
    ("index,weight\n\n", "a header but no rows"),
    ("path,class,weight\n" + "".join(f"train/{c}/{i}.png,{c},0\n" for c in ("cat", "dog") for i in range(3)),
     "every weight is 0"),
    ("path,class,weight\ntrain/cat/0.png,cat,1\ntrain/cat/1.png,dog,1\n",
     r"line 3: class 'dog' but the image 'train/cat/1.png' is of class 'cat'"),
    (None, r"--sample_weights \S+: no such file"),
])
def test_sample_weights_errors_name_the_line(folder, tmp_path, text, message):
    ds = get_dataset("imagefolder", str(folder))
    if text is not None:
        (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(SemembedError, match=message):
        read_sample_weights(str(tmp_path / "bad.csv"), ds, str(folder))
    (tmp_path / "bin.csv").write_bytes(b"\x80\x81\xff\x00")
    with pytest.raises(SemembedError, match="not a UTF-8"):
        read_sample_weights(str(tmp_path / "bin.csv"), ds, str(folder))
