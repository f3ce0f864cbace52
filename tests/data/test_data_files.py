"""File datasets: every reference layout on a tiny fake copy; class order, splits, restriction, name suffixes."""

import json

import numpy as np
import pytest
from scipy.io import savemat

from semembed.data import get_dataset, list_datasets
from semembed.data import constants as C
from semembed.errors import SemembedError

from data_fakes import make_inat, make_nab, make_subdirectory, write_image


def _names(files):
    return [f.replace("\\", "/").split("/data/", 1)[1] for f in files]


# === ILSVRC ===
@pytest.fixture
def ilsvrc_root(tmp_root, rng):
    for split in ("ILSVRC2012_img_train", "ILSVRC2012_img_val"):
        for wnid in ("n02", "n01"):
            for name in ("b_2.JPEG", "a_1.jpeg", "sub/c_3.jpg", "img-1.jpeg", "x.png"):
                write_image(tmp_root / split / wnid / name, rng)
            (tmp_root / split / wnid / "notes.txt").write_text("not an image")
    (tmp_root / "ILSVRC2012_img_train" / "stray_file").write_text("")
    return tmp_root


def test_ilsvrc_layout(ilsvrc_root):
    ds = get_dataset("ILSVRC", str(ilsvrc_root))
    assert ds.classes == ["n01", "n02"]
    # Keras 2.2 list_pictures: lower-cased name must start with <word chars>.jp(e)g; recursive; sorted paths
    want = [f"ILSVRC2012_img_train/{c}/{f}" for c in ("n01", "n02") for f in ("a_1.jpeg", "b_2.JPEG", "sub/c_3.jpg")]
    assert _names(ds.train_files) == want
    assert ds.train_labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert _names(ds.test_files)[0] == "ILSVRC2012_img_val/n01/a_1.jpeg"
    assert ds.image_shape == (224, 224, 3) and ds.randzoom_range == (256, 480) and ds.default_target_size == 256
    np.testing.assert_allclose(ds.mean, C.IMAGENET_MEAN, rtol=1e-6)
    ordered = get_dataset("ilsvrc", str(ilsvrc_root), classes=["n02", "n01", "n09"])
    assert ordered.classes == ["n02", "n01", "n09"] and ordered.num_classes == 3
    assert ordered.train_labels.tolist() == [0, 0, 0, 1, 1, 1]
    caffe = get_dataset("ILSVRC-caffe", str(ilsvrc_root))
    assert caffe.color_mode == "bgr" and caffe.std.tolist() == [1, 1, 1]
    np.testing.assert_allclose(caffe.mean, C.CAFFE_MEAN, rtol=1e-6)
    with pytest.raises(SemembedError, match="-large"):
        get_dataset("ilsvrc-large", str(ilsvrc_root))


def test_ilsvrc_missing_dir_named(tmp_root):
    with pytest.raises(SemembedError, match="ILSVRC2012_img_train"):
        get_dataset("ilsvrc", str(tmp_root))


def test_imagefolder_one_level_too_deep_names_the_parent(tmp_root, rng):
    write_image(tmp_root / "x" / "train" / "a" / "1.png", rng)
    write_image(tmp_root / "x" / "test" / "a" / "2.png", rng)
    assert get_dataset("imagefolder", str(tmp_root / "x")).num_classes == 1
    with pytest.raises(SemembedError, match=r"--data_root .*train: no train/ sub-directory.*did you mean its parent"):
        get_dataset("imagefolder", str(tmp_root / "x" / "train"))


# === NAB / CUB ===
def test_nab_layout_and_suffixes(tmp_root, rng):
    make_nab(tmp_root, rng)
    ds = get_dataset("NAB", str(tmp_root))
    assert ds.classes == [3, 7, 12]
    assert _names(ds.train_files) == ["images/007.a/img1.jpg", "images/012.c/img3.jpg", "images/003.b/img5.jpg"]
    assert ds.train_labels.tolist() == [1, 2, 0] and ds.test_labels.tolist() == [0, 1]
    assert (ds.randzoom_range, ds.image_shape, ds.randerase_prob) == ((256, 480), (224, 224, 3), 0.5)
    np.testing.assert_allclose(ds.mean, C.NAB_MEAN, rtol=1e-6)
    restricted = get_dataset("nab", str(tmp_root), classes=np.array([12, 7]))
    assert _names(restricted.train_files) == ["images/007.a/img1.jpg", "images/012.c/img3.jpg"]
    assert restricted.train_labels.tolist() == [1, 0] and restricted.class_indices == {12: 0, 7: 1}
    large = get_dataset("nab-large-caffe", str(tmp_root))
    assert large.image_shape == (448, 448, 3) and large.randzoom_range is None and large.color_mode == "bgr"
    assert large.default_target_size == 512
    with pytest.raises(SemembedError, match="unknown dataset 'nab-caffe-large'"):
        get_dataset("nab-caffe-large", str(tmp_root))


def test_cub_and_cub_sub(tmp_root, rng):
    make_nab(tmp_root, rng, split_files=("train_test_split.txt", "train_test_split_5.txt"))
    cub = get_dataset("CUB", str(tmp_root))
    assert cub.image_shape == (448, 448, 3) and cub.randzoom_range is None and cub.train_repeats == 1
    np.testing.assert_allclose(cub.mean, C.CUB_MEAN, rtol=1e-6)
    sub = get_dataset("cub-sub5", str(tmp_root))
    assert sub.train_repeats == 30 // 5 and sub.epoch_length() == 6 * 3
    assert sub.steps_per_epoch(4) == 5
    np.testing.assert_allclose(get_dataset("cub-ilsvrcmean", str(tmp_root)).std, C.IMAGENET_STD, rtol=1e-6)
    with pytest.raises(SemembedError, match="train_test_split_3.txt"):
        get_dataset("cub-sub3", str(tmp_root))
    with pytest.raises(SemembedError, match="-large"):
        get_dataset("cub-large", str(tmp_root))


def test_nab_label_missing_is_clear(tmp_root, rng):
    make_nab(tmp_root, rng)
    (tmp_root / "image_class_labels.txt").write_text("1 7\n2 3\n")
    with pytest.raises(SemembedError, match="no class label for image id '3'"):
        get_dataset("nab", str(tmp_root))


# === Cars / Flowers ===
def test_cars_layout(tmp_root, rng):
    rel = ["car_ims/000001.jpg", "car_ims/000002.jpg", "car_ims/000003.jpg", "car_ims/000004.jpg"]
    for r in rel:
        write_image(tmp_root / r, rng)
    annos = np.zeros(4, dtype=[("relative_im_path", "O"), ("class", "O"), ("test", "O")])
    annos["relative_im_path"] = rel
    annos["class"] = [5, 2, 5, 9]
    annos["test"] = [0, 1, 1, 0]
    savemat(tmp_root / "cars_annos.mat", {"annotations": annos})
    ds = get_dataset("Cars", str(tmp_root))
    assert ds.classes == [2, 5, 9]
    assert _names(ds.train_files) == [rel[0], rel[3]] and ds.train_labels.tolist() == [1, 2]
    assert _names(ds.test_files) == [rel[1], rel[2]] and ds.test_labels.tolist() == [0, 1]
    assert ds.image_shape == (448, 448, 3)
    np.testing.assert_allclose(ds.mean, C.CARS_MEAN, rtol=1e-6)


def test_flowers_layout(tmp_root, rng):
    for i in range(1, 7):
        write_image(tmp_root / "jpg" / f"image_{i:05d}.jpg", rng)
    savemat(tmp_root / "imagelabels.mat", {"labels": np.array([[3, 1, 3, 2, 1, 2]])})
    savemat(tmp_root / "setid.mat", {"trnid": np.array([[4, 1]]), "valid": np.array([[6]]), "tstid": np.array([[2, 3, 5]])})
    ds = get_dataset("flowers", str(tmp_root))
    assert ds.classes == [1, 2, 3]
    assert _names(ds.train_files) == ["jpg/image_00004.jpg", "jpg/image_00001.jpg", "jpg/image_00006.jpg"]
    assert ds.train_labels.tolist() == [1, 2, 1] and ds.test_labels.tolist() == [0, 2, 0]
    np.testing.assert_allclose(ds.std, C.FLOWERS_STD, rtol=1e-6)
    assert get_dataset("flowers", str(tmp_root), classes=[2]).train_labels.tolist() == [0, 0]


# === iNaturalist ===
def test_inat_2018_and_supercategory(tmp_root, rng):
    make_inat(tmp_root, rng, "2018")
    ds = get_dataset("iNat", str(tmp_root))
    assert ds.classes == ["Beetle", "Sparrow", "Crow"]  # category ids 2, 5, 9 in ascending order
    assert ds.train_labels.tolist() == [2, 0, 1, 2] and ds.test_labels.tolist() == [1, 0, 2]
    assert _names(ds.train_files) == [f"train_val_images/{i}.jpg" for i in (11, 12, 13, 14)]
    assert ds.randzoom_range == (256, 480)
    np.testing.assert_allclose(ds.mean, C.INAT2018_STATS[None][0], rtol=1e-6)
    aves = get_dataset("iNat2018_Aves", str(tmp_root))
    assert aves.classes == ["Sparrow", "Crow"] and aves.train_labels.tolist() == [1, 0, 1]
    np.testing.assert_allclose(aves.mean, C.INAT2018_STATS["aves"][0], rtol=1e-6)
    by_id = get_dataset("inat", str(tmp_root), classes=["9", 5])
    assert by_id.classes == ["9", "5"] and by_id.train_labels.tolist() == [0, 1, 0]
    large = get_dataset("inat_aves-large", str(tmp_root))
    assert large.image_shape == (448, 448, 3) and large.randzoom_range is None


def test_inat_2019(tmp_root, rng):
    make_inat(tmp_root, rng, "2019")
    ds = get_dataset("iNat2019", str(tmp_root))
    assert ds.num_classes == 3 and ds.num_train == 4
    np.testing.assert_allclose(ds.mean, C.INAT2019_MEAN, rtol=1e-6)
    with pytest.raises(SemembedError, match="train2018.json"):
        get_dataset("inat", str(tmp_root))


def test_inat_category_mismatch(tmp_root, rng):
    make_inat(tmp_root, rng, "2018")
    data = json.loads((tmp_root / "val2018.json").read_text())
    data["categories"] = data["categories"][:2]
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] != 9]
    (tmp_root / "val2018.json").write_text(json.dumps(data))
    with pytest.raises(SemembedError, match="different categories"):
        get_dataset("inat", str(tmp_root))


# === SubDirectory (MIT67, UCMLU, RESISC45) and ImageFolder ===
@pytest.mark.parametrize("name,layout,mean", [
    ("MIT67Scenes", dict(img_dir="Images", train_list="TrainImages.txt", test_list="TestImages.txt"), C.MIT67_MEAN),
    ("UCMLU", {}, C.UCMLU_MEAN),
    ("resisc45", {}, C.RESISC45_MEAN),
])
def test_subdirectory_layouts(tmp_root, rng, name, layout, mean):
    make_subdirectory(tmp_root, rng, **layout)
    ds = get_dataset(name, str(tmp_root))
    assert ds.classes == ["airport", "beach", "forest"]
    base = layout.get("img_dir", ".")
    assert _names(ds.train_files) == [f"{base}/{r}" for r in ("forest/forest_0.jpg", "beach/beach_0.jpg",
                                                              "airport/airport_1.jpg", "forest/forest_2.jpg")]
    assert ds.train_labels.tolist() == [2, 1, 0, 2] and ds.test_labels.tolist() == [0, 1]
    assert (ds.image_shape, ds.randerase_prob, ds.randzoom_range) == ((224, 224, 3), 0.5, None)
    np.testing.assert_allclose(ds.mean, mean, rtol=1e-6)
    only = get_dataset(name, str(tmp_root), classes=["forest", "airport"])
    assert only.train_labels.tolist() == [0, 1, 0] and only.test_labels.tolist() == [1]


def test_subdirectory_missing_list_named(tmp_root, rng):
    make_subdirectory(tmp_root, rng)
    (tmp_root / "test.txt").unlink()
    with pytest.raises(SemembedError, match=r"image list not found.*test\.txt"):
        get_dataset("ucmlu", str(tmp_root))


def test_image_folder(tmp_root, rng):
    for split, n in (("train", 2), ("test", 1)):
        for cls in ("dog", "cat"):
            for i in range(n):
                write_image(tmp_root / split / cls / f"{i}.png", rng)
    (tmp_root / "train" / "cat" / "readme.txt").write_text("x")
    ds = get_dataset("ImageFolder", str(tmp_root))
    assert ds.classes == ["cat", "dog"]
    assert _names(ds.train_files) == ["train/cat/0.png", "train/cat/1.png", "train/dog/0.png", "train/dog/1.png"]
    assert ds.train_labels.tolist() == [0, 0, 1, 1] and ds.test_labels.tolist() == [0, 1]


def test_registry_names_and_errors(tmp_root):
    names = [n.lower() for n in list_datasets()]
    for n in ("cifar-10", "ilsvrc", "nab", "cub-subn", "cars", "flowers", "inat2019", "mit67scenes", "ucmlu",
              "resisc45", "fashion-mnist", "digits", "imagefolder"):
        assert n in names
    with pytest.raises(SemembedError, match="unknown dataset 'nope'"):
        get_dataset("nope", str(tmp_root))
    with pytest.raises(SemembedError, match="needs --data_root"):
        get_dataset("nab")
    with pytest.raises(SemembedError, match="not a valid int id"):
        get_dataset("digits", classes=["three"])
