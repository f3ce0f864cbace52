"""Pick the ``tf.distribute`` strategy: one device, several devices of this machine, or a cluster.

* ``TF_CONFIG`` describing a cluster → ``MultiWorkerMirroredStrategy``.
* ``gpus > 1`` (or ``gpus == 0`` meaning all visible GPUs when there are several) → ``MirroredStrategy``.
* ``cpu_replicas > 1`` → the CPU split into that many logical devices and a
  ``MirroredStrategy`` over them: the documented way to run and debug N
  replicas without GPUs.  Must be called before TensorFlow touches a device.
* otherwise the default strategy.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from semembed.errors import SemembedError


def split_cpu(n: int) -> list[str]:
    """Configure ``n`` logical CPU devices (idempotent) and return their names."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if not current or len(current) != n:
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
        except RuntimeError as exc:
            raise SemembedError(
                f"cannot split the CPU into {n} logical devices after TensorFlow has initialised its devices ({exc})"
            ) from None
    return [d.name for d in tf.config.list_logical_devices("CPU")][:n]


def cluster_from_env() -> dict | None:
    """The parsed ``TF_CONFIG`` when it describes more than one task, else None."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SemembedError(f"TF_CONFIG is not valid JSON: {exc}") from None
    cluster = cfg.get("cluster", {})
    if sum(len(v) for v in cluster.values()) <= 1:
        return None
    return cfg


def make_strategy(gpus: int = 1, cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """The strategy for this process (see module docstring)."""
    if cluster_from_env() is not None:
        if cpu_replicas > 1:
            split_cpu(cpu_replicas)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if cpu_replicas > 1:
        return tf.distribute.MirroredStrategy(split_cpu(cpu_replicas))
    visible = tf.config.list_physical_devices("GPU")
    if gpus > 1 or (gpus == 0 and len(visible) > 1):
        n = len(visible) if gpus == 0 else gpus
        if n > len(visible):
            raise SemembedError(f"--gpus {gpus}: only {len(visible)} GPU(s) visible")
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(n)])
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the process that writes files (worker 0, or the only process)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return not has_chief and resolver.task_type == "worker" and resolver.task_id == 0
