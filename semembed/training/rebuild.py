"""Rebuild the network a training task built, from what a saved model file carries, for weight-only files.

``--weight_dump m.weights.h5`` (and legacy ``.h5`` dumps) hold weights only.  The reference's
embedding networks are rebuilt from the architecture (:func:`semembed.models.load_reference_model`);
the other tasks have heads of their own (a plain classifier, center loss's ``embedding_bn``, the
label-embedding network's ``logits``, HAFrame's frame, Hier-COS's subspace scores), so they are
rebuilt by their :class:`~semembed.training.task.Task` from the task name, its options and the
class ids stored with the weights (``semembed.training.run.model_metadata``).
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np

from semembed.errors import SemembedError

#: tasks whose network is not the reference's embedding network (rebuilt by the task itself)
TASK_BUILT = ("classifier", "center_loss", "label_embedding", "haframe", "hiercos")


def rebuild_task_network(path: str, metadata: dict, architecture: str, input_shape: tuple):
    """The network of ``metadata['task']`` (one of :data:`TASK_BUILT`) with ``path``'s weights loaded by name.

    Args:
        path: the ``.weights.h5`` / ``.h5`` file the task's run wrote.
        metadata: what the file carries (``task``, ``task_options``, ``classifier_loss``, ``classes``).
        architecture: the network's architecture (the stored one unless overridden).
        input_shape: (H, W, C) of the images.

    Raises:
        SemembedError: metadata without class ids, a task option that names a missing file (the
        taxonomy of HAFrame / Hier-COS), or weights that do not fit the rebuilt network.
    """
    from semembed.models import load_weights_strict
    from semembed.models.weight_files import read_weight_file
    from semembed.training.config import TrainConfig
    from semembed.training.tasks import get_task

    task_name = metadata["task"]
    classes = metadata.get("classes")
    if not classes:
        raise SemembedError(f"{path}: a {task_name} weight file without its class ids; use the .keras model")
    options = dict(metadata.get("task_options") or {})
    hierarchy = options.get("hierarchy")
    if hierarchy and not os.path.isfile(hierarchy):
        raise SemembedError(f"{path}: rebuilding its {task_name} head needs the taxonomy it was trained with, "
                            f"{hierarchy}, which is not there; use the .keras model (--model_dump)")
    config = TrainConfig(task=task_name, architecture=architecture, task_options=options,
                         classifier_loss=metadata.get("classifier_loss") or "softmax")
    dataset = SimpleNamespace(num_classes=len(classes), image_shape=tuple(input_shape), classes=list(classes),
                              name=metadata.get("dataset"))
    targets = None
    if task_name == "center_loss" and options.get("fixed_centroids"):  # the embedding size is the centroids'
        units = [layer.arrays[-1].shape[-1] for layer in read_weight_file(path) if layer.name == "embedding" and layer.arrays]
        targets = np.zeros((len(classes), int(units[0]) if units else 1), np.float32)
    task = get_task(task_name).from_config(config, dataset, targets)
    model = task.build_models()["model"]
    load_weights_strict(model, path, legacy_bn_epsilon=False)
    return model
