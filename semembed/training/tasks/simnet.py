"""``simnet``: SimNet on base-class pairs, optionally with the adversarial domain loss (WEAKSHOT.md §2.2).

One step on a base batch A (``batch``) and, with a web stream, a web batch B
(``batch["web"]``):

1. A and B images go through the backbone in one call (BatchNorm sees both
   domains), all ordered pairs of A and of B through the pair head in one
   call;
2. L_sim = mean cross-entropy of "same class" over the A pairs (the diagonal
   included); L_dom = mean cross-entropy of the discriminator on every pair
   feature (0 = A pair, 1 = B pair);
3. SimNet (optimiser ``main``) minimises L_sim − β·L_dom — no gradient
   reversal: the sign does it; the discriminator's weights are not touched;
4. the discriminator (optimiser ``discriminator``) takes one step on L_dom
   of the pair features of step 1, detached (computed before SimNet's update).

Replicas: features of every replica are gathered and each replica runs the
head on the pairs of the *global* batch (the head's BatchNorm sees what one
device would); each replica's gradient reaches only its own images'
features, scaled so that the gradients summed over replicas equal one
device's (the backbone's BatchNorm normalises per replica, the core's
convention).  The head work is repeated on every replica.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

from semembed.models.simnet import all_pairs, build_discriminator, build_simnet, pair_targets, simnet_parts
from semembed.training.optimizers import ParamGroup
from semembed.training.step import regularization
from semembed.training.task import Task
from semembed.training.tasks import register_task
from semembed.training.tasks.common import labels_of


def _live_gather(step, x):
    """The global batch of ``x``; this replica's rows carry N× the gradient (the loss is then divided by N)."""
    n = step.num_replicas
    if n == 1:
        return x
    return step.gather(tf.stop_gradient(x) + float(n) * (x - tf.stop_gradient(x)))


def _ce(targets, logits):
    """Per-row cross-entropy of 2-class logits against 0/1 targets."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(targets, tf.int32), tf.cast(logits, tf.float32))


def pair_f1_counts(targets, logits):
    """(true positives, false positives, false negatives) of "same class" (s > 0.5) over the pair rows."""
    pred = tf.cast(tf.argmax(tf.cast(logits, tf.float32), axis=-1), tf.float32)
    t = tf.cast(targets, tf.float32)
    return tf.reduce_sum(pred * t), tf.reduce_sum(pred * (1 - t)), tf.reduce_sum((1 - pred) * t)


@register_task("simnet")
@dataclass
class SimNetTask(Task):
    """SimNet (+ discriminator when ``web``).

    Args:
        architecture: backbone name (``semembed.models``).
        input_shape: (H, W, C) of the images.
        web: a web-image stream is given (``batch["web"]``): adversarial loss and discriminator.
        beta: weight β of the domain loss in SimNet's update (0: the released script).
        discriminator_lr_multiplier: the discriminator's rate relative to the schedule's.
    """

    architecture: str
    input_shape: tuple
    web: bool = False
    beta: float = 0.1
    discriminator_lr_multiplier: float = 1.0

    def __post_init__(self) -> None:
        self.streams = ("web",) if self.web else ()
        self.metrics = ("pair_accuracy", "pair_f1", "similarity_loss") + (
            ("domain_loss", "discriminator_loss") if self.web else ())

    def build_models(self) -> dict:
        models = {"simnet": build_simnet(self.architecture, self.input_shape)}
        if self.web:
            models["discriminator"] = build_discriminator(int(models["simnet"].outputs[0].shape[-1]))
        return models

    def optimizer_groups(self, models):
        groups = {"main": [ParamGroup(models["simnet"].trainable_variables)]}
        if self.web:
            groups["discriminator"] = [ParamGroup(models["discriminator"].trainable_variables,
                                                  lr_multiplier=self.discriminator_lr_multiplier)]
        return groups

    # === Forward ===
    def pair_forward(self, xa, xb=None, training: bool = True, gather=None):
        """(pair features z, logits (float32), number of base pair rows) of a base and an optional web batch.

        Module docstring step 1: both batches through the backbone in one call, then the pairs within
        ``xa`` followed by the pairs within ``xb`` (no cross pairs) through the head in one call;
        ``gather`` maps each batch's features to the global batch's (replicas; default: as they are).
        """
        backbone, head = simnet_parts(self.models["simnet"])
        gather = gather or (lambda t: t)
        n_a = tf.shape(xa)[0]
        x = xa if xb is None else tf.concat([xa, tf.cast(xb, xa.dtype)], axis=0)
        f = backbone(x, training=training)
        rows = all_pairs(gather(f[:n_a]))
        num_a = tf.shape(rows)[0]
        if xb is not None:
            rows = tf.concat([rows, all_pairs(gather(f[n_a:]))], axis=0)
        z, logits = head(rows, training=training)
        return z, tf.cast(logits, tf.float32), num_a

    def precise_bn_forward(self, batch) -> None:
        """The training forward of one (single-device) batch dict, for PreciseBN (``semembed.training.precise_bn``)."""
        self.pair_forward(batch["image"], batch["web"]["image"] if self.web else None, training=True)

    # === Losses ===
    def simnet_losses(self, step, xa, ya, xb=None, training: bool = True):
        """(loss share, sums, detached pair features, domain labels) of one step (module docstring 1-3)."""
        simnet = self.models["simnet"]
        z, logits, num_a = self.pair_forward(xa, xb, training, gather=lambda t: _live_gather(step, t))
        n_a = tf.shape(xa)[0]
        targets = pair_targets(step.gather(ya))
        sim = tf.reduce_mean(_ce(targets, logits[:num_a]))
        replicas = float(step.num_replicas)
        loss = sim
        n = tf.cast(n_a, tf.float32)
        tp, fp, fn = pair_f1_counts(targets, logits[:num_a])
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.cast(tf.argmax(logits[:num_a], -1), tf.float32), targets), tf.float32))
        sums = {"similarity_loss": sim * n, "pair_accuracy": acc * n,
                "pair_f1": 2 * tp / tf.maximum(2 * tp + fp + fn, 1.0) * n, "count": n}
        domain = None
        if xb is not None:
            domain = tf.concat([tf.zeros([num_a], tf.int32), tf.ones([tf.shape(logits)[0] - num_a], tf.int32)], 0)
            dom = tf.reduce_mean(_ce(domain, self.models["discriminator"](z, training=training)))
            loss = loss - self.beta * dom
            sums["domain_loss"] = dom * n
        reg = regularization(simnet)
        sums["loss"] = (loss + reg) * n
        return loss / replicas + reg / replicas, sums, tf.stop_gradient(z), domain

    def discriminator_loss(self, step, z, domain):
        """Mean cross-entropy of the discriminator on detached pair features (share of this replica)."""
        loss = tf.reduce_mean(_ce(domain, self.models["discriminator"](z, training=True)))
        return loss / float(step.num_replicas), loss

    # === Steps ===
    def train_step(self, batch, step):
        ya = labels_of(batch)
        xb = batch["web"]["image"] if self.web else None

        def fn(xa, ya, *rest):
            loss, sums, z, domain = self.simnet_losses(step, xa, ya, rest[0] if rest else None)
            return loss, (sums, z, domain)

        args = (batch["image"], ya) + ((xb,) if self.web else ())
        _, (sums, z, domain), _ = step.minimize("main", fn, *args, jit=step.num_replicas == 1)
        if self.web:
            _, d_loss, _ = step.minimize("discriminator", lambda z, d: self.discriminator_loss(step, z, d), z, domain)
            sums["discriminator_loss"] = d_loss * sums["count"]
        return sums

    def eval_step(self, batch, step):
        """Pair F1/accuracy/loss over all pairs of one evaluation batch (inference mode)."""
        y = labels_of(batch)
        backbone, head = simnet_parts(self.models["simnet"])
        _, logits = head(all_pairs(backbone(batch["image"], training=False)), training=False)
        logits = tf.cast(logits, tf.float32)
        targets = pair_targets(y)
        n = tf.cast(tf.shape(y)[0], tf.float32)
        tp, fp, fn = pair_f1_counts(targets, logits)
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.cast(tf.argmax(logits, -1), tf.float32), targets), tf.float32))
        loss = tf.reduce_mean(_ce(targets, logits))
        return {"loss": loss * n, "similarity_loss": loss * n, "pair_accuracy": acc * n,
                "pair_f1": 2 * tp / tf.maximum(2 * tp + fp + fn, 1.0) * n, "count": n}

    def predict_step(self, batch):
        return simnet_parts(self.models["simnet"])[0](batch["image"], training=False), None


def keras_simnet_loaded(path: str, flag: str = "--simnet") -> keras.Model:
    """A SimNet model file (``learn_simnet --model_dump``), frozen.

    Raises:
        SemembedError: naming ``flag`` and ``path`` when the model is not a SimNet.
    """
    from semembed.errors import SemembedError
    from semembed.models import load_model_file

    model = load_model_file(path)
    try:
        simnet_parts(model)
    except SemembedError as exc:
        raise SemembedError(f"{flag} {path}: {exc}") from None
    model.trainable = False
    return model
