"""The ``Task`` interface: what one training method supplies to the trainer.

A task is a *single-replica view* (TF Model Garden's ``Task``): it builds its
named models, says which variables each named optimiser updates (with
learning-rate multipliers), declares its metrics and extra input streams, and
computes one replica's step on a batch dict.  The
:class:`~semembed.training.trainer.Trainer` owns the strategy, the optimisers,
the loop, the schedule, logging and snapshots, and never looks inside a batch.

Batches are dicts: ``image``, ``label`` and optionally ``weight`` (per-sample
weight), ``index`` (position in the training list), ``domain``; a task that
lists ``streams = ("web",)`` gets the batch of that second stream under
``batch["web"]``.

Metric values returned by a step are *sums over the replica's batch* plus a
``count``; the trainer sums them over replicas and divides by the count.
Every step must return ``loss`` and ``count``.

A new method is one module under :mod:`semembed.training.tasks` with a
``@register_task("name")`` class; see ``docs/example_task.py``.
"""

from __future__ import annotations

from typing import ClassVar

import keras

from semembed.training.optimizers import ParamGroup


class Task:
    """Base class of every training method (see the module docstring)."""

    #: registry name (``--task``)
    name: ClassVar[str] = ""
    #: metrics the steps return besides ``loss`` (the first one is shown in the progress bar)
    metrics: ClassVar[tuple[str, ...]] = ()
    #: names of extra input streams zipped with the main one (``batch[name]``)
    streams: ClassVar[tuple[str, ...]] = ()
    #: layers that train during the fine-tuning warm-up (``--finetune_init``)
    warmup_layers: ClassVar[tuple[str, ...]] = ()

    #: what the warm-up of a run from scratch (``--warmup_epochs``) trains, in words
    warmup_description: ClassVar[tuple[str, ...]] = ("the new layers",)
    #: compute :meth:`validation_metrics` over the whole validation set each epoch (an instance switches it on
    #: when asked, e.g. the metric task for ``--snapshot_best val_Recall@1``)
    set_validation: bool = False

    models: dict

    @classmethod
    def from_config(cls, config, dataset, targets) -> "Task":
        """The task for a command-line run (``--task name``).

        Args:
            config: the :class:`~semembed.training.config.TrainConfig`.
            dataset: the :class:`~semembed.data.ImageDataset` (``image_shape``, ``num_classes``, ...).
            targets: ``(num_classes, dim)`` class embeddings (one-hot for ``--embedding onehot``).
        """
        from semembed.errors import SemembedError

        raise SemembedError(f"task {cls.name!r} cannot be built from the command line: "
                            f"{cls.__name__} defines no from_config(config, dataset, targets)")

    # === Models and optimisers ===
    def build_models(self) -> dict[str, keras.Model]:
        """Named models, built inside the strategy scope (default: ``{"model": self.build_model()}``)."""
        return {"model": self.build_model()}

    def build_model(self) -> keras.Model:
        raise NotImplementedError

    @property
    def model(self) -> keras.Model:
        """The first model (the one whose features are dumped and evaluated)."""
        return next(iter(self.models.values()))

    def optimizer_groups(self, models: dict[str, keras.Model]) -> dict[str, list[ParamGroup]]:
        """Named optimisers → parameter groups (default: one optimiser ``main`` over every model)."""
        variables = [v for m in models.values() for v in m.trainable_variables]
        return {"main": [ParamGroup(variables)]}

    def warmup_variables(self, models: dict[str, keras.Model]) -> list | None:
        """Variables the warm-up epochs train (``--warmup_epochs``, ``--finetune_init``); the others stay fixed.

        Default None: the layers named in :attr:`warmup_layers` plus the embedder's last layer.
        """
        return None

    def state_variables(self) -> list:
        """Extra state a snapshot must keep (e.g. a task's own seed generator or memory bank)."""
        return []

    def on_epoch_begin(self, epoch: int) -> None:
        """Called by the trainer before each epoch (0-based; also after a resume), outside the step."""

    # === Steps (run inside strategy.run; return metric sums incl. loss and count) ===
    def train_step(self, batch: dict, step) -> dict:
        raise NotImplementedError

    def eval_step(self, batch: dict, step) -> dict:
        raise NotImplementedError

    def validation_metrics(self, features, labels, index) -> dict:
        """Figures of the whole validation set (e.g. Recall@1), added to each epoch's logs as ``val_<name>``
        when :attr:`set_validation` is on; default none.

        Args:
            features: (N, d) NumPy array, ``predict_step``'s features of the validation set in file order.
            labels: (N,) their labels.
            index: (N,) their positions in the test split (images that could not be read are missing).
        """
        return {}

    def predict_step(self, batch: dict):
        """(features, class probabilities or None) of a batch, for dumps and final metrics."""
        raise NotImplementedError
