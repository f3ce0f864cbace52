"""Classification losses of ``--task classifier`` / ``learn_classifier --loss NAME``, registered by name.

A loss is built by a factory ``factory(num_classes, config) -> fn`` (``config``: the run's
:class:`~semembed.training.TrainConfig`, from which a loss reads its own options, e.g.
``label_smoothing``; a hierarchy-aware loss would read the taxonomy from it) and
``fn(labels, probs) -> per-sample losses`` in ``keras.ops``: ``labels`` int (B,),
``probs`` the softmax output (B, C).  Add one with ``@register_classifier_loss("name")``.

* ``softmax``: cross-entropy against one-hot targets, or with ``label_smoothing`` ε the
  reference's smoothed targets (``learn_classifier.py``): 1 − ε for the true class and
  ε / (C − 1) for every other (Keras' own smoothing uses ε / C everywhere instead).
"""

from __future__ import annotations

import inspect
from typing import Callable

from keras import ops

from semembed.errors import SemembedError

_LOSSES: dict[str, Callable] = {}
#: probabilities are clipped to [EPSILON, 1] before the logarithm (Keras' categorical cross-entropy does the same)
EPSILON = 1e-7


def register_classifier_loss(name: str):
    """Decorator: make ``factory(num_classes, config)`` available as ``--loss name`` of the classifier."""

    def wrap(factory):
        if name in _LOSSES and _LOSSES[name] is not factory:
            raise ValueError(f"classifier loss {name!r} is registered twice")
        _LOSSES[name] = factory
        return factory

    return wrap


def classifier_loss_names() -> list[str]:
    return sorted(_LOSSES)


def get_classifier_loss(name: str, num_classes: int, config=None, class_ids=None) -> Callable:
    """The per-sample loss function ``fn(labels, probs)`` registered as ``name``.

    ``class_ids``: the dataset's class ids in label order, passed to factories that take a
    ``class_ids`` argument (hierarchy-aware losses map them onto the taxonomy).
    """
    if name not in _LOSSES:
        raise SemembedError(f"unknown classifier --loss {name!r}; known: {', '.join(classifier_loss_names())}")
    factory = _LOSSES[name]
    if class_ids is not None and "class_ids" in inspect.signature(factory).parameters:
        return factory(int(num_classes), config, class_ids=list(class_ids))
    return factory(int(num_classes), config)


def smoothed_targets(labels, num_classes: int, label_smoothing: float):
    """(B, C) targets: 1 − ε on the true class, ε / (C − 1) elsewhere (the reference's smoothing)."""
    onehot = ops.one_hot(ops.cast(labels, "int32"), num_classes)
    if label_smoothing <= 0 or num_classes < 2:
        return onehot
    return onehot * (1.0 - label_smoothing) + (1.0 - onehot) * (label_smoothing / (num_classes - 1))


def cross_entropy(targets, probs):
    """−Σ_c t_c log p_c per row, probabilities clipped to [EPSILON, 1]."""
    probs = ops.clip(ops.cast(probs, "float32"), EPSILON, 1.0)
    return -ops.sum(ops.cast(targets, "float32") * ops.log(probs), axis=-1)


@register_classifier_loss("softmax")
def softmax_loss(num_classes: int, config=None) -> Callable:
    eps = float(getattr(config, "label_smoothing", 0.0) or 0.0)
    if not 0.0 <= eps < 1.0:
        raise SemembedError(f"--label_smoothing must be in [0, 1), got {eps}")

    def fn(labels, probs):
        return cross_entropy(smoothed_targets(labels, num_classes, eps), probs)

    return fn
