"""Datasets and ``tf.data`` input pipelines (the only stage besides training that imports TensorFlow).

>>> from semembed.data import get_dataset
>>> ds = get_dataset("digits")
>>> batches = ds.train_dataset(32, epoch=0, seed=0)   # one epoch of (images, labels)
"""

from semembed.data.arrays import ArrayDataset
from semembed.data.base import ImageDataset
from semembed.data.class_split import ClassSplitDataset, restrict_classes
from semembed.data.files import FileDataset, FileLists
from semembed.data.registry import default_dataset, get_dataset, list_datasets

__all__ = ["ArrayDataset", "ClassSplitDataset", "FileDataset", "FileLists", "ImageDataset", "default_dataset", "get_dataset",
           "list_datasets", "restrict_classes"]
