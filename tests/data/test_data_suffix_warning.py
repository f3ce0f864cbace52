"""The README promises: on CIFAR, Fashion-MNIST and digits the -large/-ilsvrcmean/-caffe suffixes are ignored with a warning."""

from __future__ import annotations

import logging

import pytest

from semembed.data import get_dataset


@pytest.mark.parametrize("name", ["digits-large", "digits-ilsvrcmean", "digits-caffe", "digits-large-caffe"])
def test_in_memory_dataset_suffixes_are_ignored_with_a_warning(name, caplog):
    plain = get_dataset("digits")
    with caplog.at_level(logging.WARNING):
        ds = get_dataset(name)
    assert any(name in r.getMessage() and "ignored" in r.getMessage() for r in caplog.records), caplog.text
    assert ds.image_shape == plain.image_shape == (8, 8, 1)


def test_plain_name_gives_no_warning(caplog):
    with caplog.at_level(logging.WARNING):
        get_dataset("digits")
    assert not [r for r in caplog.records if "ignored" in r.getMessage()]
