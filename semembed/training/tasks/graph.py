"""Graph regularisation from a frozen SimNet, added to any single-model task (WEAKSHOT.md §2.5).

``GraphRegularized(inner, ...)`` wraps a task (``classifier``, ``embedding``
with or without its ``prob`` head) and adds α·L_graph to its loss:

1. A = the frozen SimNet's similarities on the batch's own (augmented)
   images, A[i, j] = s(x_j, x_i), over the *global* batch (SimNet features
   gathered from every replica);
2. Ã = g(A), g(a) = (e^{μa} − 1)/(e^{μ} − 1) (μ = −4; 0 → 0, 1 → 1);
3. L_graph = (1/B²)·Σ Ã[i, j]·‖h_i − h_j‖² over every pair (across labels
   too: the reference's eye = 1), h = the model's pooled feature (the input of
   its ``embedding`` layer, else of ``prob``), raw;
4. ``schedule``: ``alternate`` (the reference: epochs 0, 2, 4, … with the graph
   term, 1, 3, 5, … without) or ``every``.  ``graph_loss`` is computed and
   reported in every epoch; ``graph_applied`` (1 or 0) says whether it entered
   the loss in that epoch.

The graph term is computed on the gathered global batch with gradient only
into this replica's rows, so N replicas sum to one device's gradient.  The
per-sample weights (``--sample_weights``) apply to the inner task's loss as
usual.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from semembed.errors import SemembedError
from semembed.losses.denoising import graph_loss, rescale_similarity
from semembed.models.simnet import all_pairs, same_class_probability, simnet_parts
from semembed.training.task import Task
from semembed.weakshot.config import GRAPH_DEFAULTS, GRAPH_SCHEDULES

#: TrainConfig.task_options keys of the graph regulariser
OPTION_KEYS = ("graph_simnet", "graph_weight", "graph_mu", "graph_schedule")


def feature_tensor(model: keras.Model):
    """The pooled feature h of a model: input of its ``embedding`` layer, else of ``prob``."""
    for name in ("embedding", "prob"):
        try:
            return model.get_layer(name).input
        except ValueError:
            continue
    raise SemembedError(f"--graph_simnet: model {model.name!r} has no 'embedding' or 'prob' layer whose input "
                        "is the pooled feature the graph loss needs")


class _FeatureTap:
    """Calls the model once through a twin that also returns h; keeps h for the graph term."""

    def __init__(self, model: keras.Model):
        self._model = model
        self._twin = keras.Model(model.inputs, [*model.outputs, feature_tensor(model)], name=model.name + "_tap")
        self.features = None

    def __call__(self, x, training=False):
        outs = self._twin(x, training=training)
        self.features = outs[-1]
        rest = list(outs[:-1])
        return rest[0] if len(rest) == 1 else rest

    def __getattr__(self, name):
        return getattr(self._model, name)


class _GraphStep:
    """A StepContext whose ``main`` minimisation adds α·active·L_graph to the inner task's loss."""

    def __init__(self, step, task: "GraphRegularized", adjacency):
        self._step, self._task, self._adjacency = step, task, adjacency

    def __getattr__(self, name):
        return getattr(self._step, name)

    def minimize(self, optimizer, loss_fn, *args, **kw):
        if optimizer != "main":
            return self._step.minimize(optimizer, loss_fn, *args, **kw)
        task, step = self._task, self._step

        def fn(*a):
            *orig, adj = a
            loss, sums = loss_fn(*orig)
            h = task.tap.features
            g = graph_loss(step.gather(tf.cast(h, tf.float32)), adj)
            term = task.weight * task.active * g
            n = tf.cast(tf.shape(h)[0], tf.float32)
            sums = dict(sums)
            sums["graph_loss"] = g * n
            sums["graph_applied"] = task.active * n  # 1 in the epochs the term enters the loss, else 0
            sums["loss"] = sums["loss"] + term * n
            return loss + term, sums

        if step.num_replicas > 1:
            kw["jit"] = False  # the gather is a collective
        return step.minimize(optimizer, fn, *args, self._adjacency, **kw)


class GraphRegularized(Task):
    """``inner`` + α·graph loss from the SimNet in ``simnet_path`` (module docstring).

    Args:
        inner: a task with one model and a ``main`` optimiser (classifier, embedding).
        simnet_path: a SimNet file written by ``learn_simnet``.
        weight: α (default 0.1, the reference's).
        mu: μ of the rescaling (default −4).
        schedule: ``alternate`` or ``every``.
        image_stats: (mean, std) per channel of the training images' normalisation (the dataset's), used
            when the SimNet takes the other channel count: the batch is un-normalised, converted (RGB ->
            grey by luma, grey -> RGB by repetition) and normalised with the converted constants
            (:func:`semembed.data.augment.channel_stats`).  None: the channel counts must agree.
    """

    def __init__(self, inner: Task, simnet_path: str, weight: float = GRAPH_DEFAULTS["weight"],
                 mu: float = GRAPH_DEFAULTS["mu"], schedule: str = GRAPH_DEFAULTS["schedule"],
                 image_stats: tuple | None = None):
        if schedule not in GRAPH_SCHEDULES:
            raise SemembedError(f"--graph_schedule {schedule!r}: expected one of {', '.join(GRAPH_SCHEDULES)}")
        from semembed.validation import check_number

        check_number("--graph_weight", weight, 0)
        check_number("--graph_mu", mu)
        self.inner, self.simnet_path = inner, simnet_path
        self.weight, self.mu, self.schedule = float(weight), float(mu), schedule
        self.image_stats = image_stats
        self._convert = None  # (mean, std, channels, target mean, target std) when the SimNet's channels differ
        self.name = inner.name
        self.metrics = tuple(inner.metrics) + ("graph_loss", "graph_applied")
        self.streams = tuple(inner.streams)
        self.warmup_layers = tuple(inner.warmup_layers)

    def build_models(self) -> dict:
        from semembed.training.tasks.simnet import keras_simnet_loaded

        models = dict(self.inner.build_models())
        name, main = next(iter(models.items()))
        self.tap = _FeatureTap(main)
        self.inner.models = {**models, name: self.tap}
        simnet = keras_simnet_loaded(self.simnet_path, "--graph_simnet")
        want, got = tuple(main.inputs[0].shape[1:]), tuple(simnet.inputs[0].shape[1:])
        if want[:2] != got[:2]:
            raise SemembedError(f"--graph_simnet {self.simnet_path}: the SimNet takes images of {got[0]}x{got[1]} "
                                f"pixels, the model {want[0]}x{want[1]}; train it on images of the same size "
                                "(--target_size/--crop_size)")
        if want[2] != got[2]:
            if self.image_stats is None:
                raise SemembedError(f"--graph_simnet {self.simnet_path}: the SimNet takes {got[2]}-channel images, "
                                    f"the model {want[2]}-channel ones")
            from semembed.data.augment import channel_stats

            mean, std = (np.asarray(v, np.float32).reshape(-1) for v in self.image_stats)
            to_mean, to_std = channel_stats(mean, std, got[2])
            self._convert = (mean, std, got[2], to_mean, to_std)
        self.sim_backbone, self.sim_head = simnet_parts(simnet)
        self.active = tf.Variable(1.0, trainable=False, name="graph_active")
        return models

    def optimizer_groups(self, models):
        return self.inner.optimizer_groups(models)

    def state_variables(self) -> list:
        return self.inner.state_variables()

    def on_epoch_begin(self, epoch: int) -> None:
        self.inner.on_epoch_begin(epoch)
        on = self.schedule == "every" or epoch % 2 == 0
        self.active.assign(1.0 if on else 0.0)

    def simnet_images(self, images):
        """The batch's images as the SimNet takes them (converted to its channel count, see ``image_stats``)."""
        if self._convert is None:
            return images
        from semembed.data.augment import convert_channels

        mean, std, channels, to_mean, to_std = self._convert
        raw = tf.cast(images, tf.float32) * std + mean
        return (convert_channels(raw, channels) - to_mean) / to_std

    def adjacency(self, step, images):
        """Ã (B_global, B_global) of the frozen SimNet on the global batch."""
        images = self.simnet_images(images)
        f = step.gather(tf.stop_gradient(self.sim_backbone(images, training=False)))
        b = tf.shape(f)[0]
        _, logits = self.sim_head(all_pairs(f), training=False)
        a = tf.reshape(same_class_probability(logits), [b, b])
        return tf.stop_gradient(rescale_similarity(a, self.mu))

    def train_step(self, batch, step):
        return self.inner.train_step(batch, _GraphStep(step, self, self.adjacency(step, batch["image"])))

    def eval_step(self, batch, step):
        return self.inner.eval_step(batch, step)

    def predict_step(self, batch):
        return self.inner.predict_step(batch)


def with_graph_regularization(task: Task, config, dataset=None) -> Task:
    """``task`` wrapped in :class:`GraphRegularized` when ``config.task_options`` names a ``graph_simnet``.

    ``dataset``: the training data, whose mean/std let a SimNet of the other channel count see the images.
    """
    opts = getattr(config, "task_options", None) or {}
    if not opts.get("graph_simnet"):
        return task
    stats = None
    if dataset is not None and getattr(dataset, "color_mode", "rgb") == "rgb":
        stats = (dataset.mean, dataset.std)
    return GraphRegularized(task, opts["graph_simnet"], weight=opts.get("graph_weight", GRAPH_DEFAULTS["weight"]),
                            mu=opts.get("graph_mu", GRAPH_DEFAULTS["mu"]),
                            schedule=opts.get("graph_schedule", GRAPH_DEFAULTS["schedule"]), image_stats=stats)
