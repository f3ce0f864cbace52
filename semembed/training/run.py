"""``train(config)``: everything ``learn_image_embeddings`` does, as a library call.

Loads the class embedding and the dataset (restricted and ordered by the
embedding's ``ind2label``), picks the strategy, builds the task and trainer,
resumes from a snapshot or fine-tunes, trains, reports the final metrics, and
writes the requested dumps.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass

import numpy as np

from semembed.errors import SemembedError
from semembed.evaluation.classification import balanced_accuracy
from semembed.io import check_overwrite
from semembed.training.config import TrainConfig


@dataclass
class TrainResult:
    model: object
    history: list
    final: dict  # final metrics on the test set
    features: np.ndarray | None
    probabilities: np.ndarray | None
    test_labels: np.ndarray
    class_ids: list


def load_targets(embedding: str, dataset_name: str, data_root: str | None, class_list: str | None = None,
                 flag: str = "--embedding", **sizes):
    """(class-embedding matrix, class id list, dataset) for ``--embedding FILE`` or ``onehot``.

    ``class_list``: a file of class ids (first word per line) restricting and ordering the classes
    (``onehot`` only: an embedding file's ``ind2label`` does that).
    ``flag``: the option that named ``embedding``, for messages (``--centroids`` of center loss).
    ``sizes``: ``target_size`` / ``crop_size`` for :func:`semembed.data.get_dataset`.
    """
    from semembed.data import get_dataset

    if embedding == "onehot":
        classes = None
        if class_list:
            from semembed.taxonomy.parsing import read_class_list

            # converted to the dataset's id type
            classes, lines = read_class_list(class_list, str_ids=True, flag="--class_list")
        from semembed.data.layouts.common import ClassIdError

        try:
            ds = get_dataset(dataset_name, data_root, classes=classes, **sizes)
        except ClassIdError as exc:
            line = dict(zip(map(str, classes), lines)).get(str(exc.class_id), "?")
            raise SemembedError(f"--class_list {class_list}, line {line}: class {exc.class_id!r} is not a class id "
                                f"of dataset {dataset_name} (its ids are {exc.kind}s)") from None
        if class_list:
            check_listed_classes(class_list, classes, lines, ds)
        return np.eye(ds.num_classes, dtype=np.float32), list(ds.classes), ds
    if class_list:
        raise SemembedError(f"--class_list {class_list}: the classes come from the class-embedding file {flag} "
                            f"{embedding} (its ind2label); give one of them")
    from semembed.class_embeddings import load_class_embedding

    emb = load_class_embedding(embedding)
    ds = get_dataset(dataset_name, data_root, classes=list(emb.ind2label), **sizes)
    if ds.num_classes != emb.num_classes:
        raise SemembedError(
            f"{flag} {embedding} has {emb.num_classes} classes but dataset {dataset_name} uses {ds.num_classes}"
        )
    check_class_overlap(embedding, dataset_name, data_root, ds, sizes, flag)
    return emb.embedding.astype(np.float32), list(emb.ind2label), ds


def check_listed_classes(path: str, listed: list, lines: list[int], ds) -> None:
    """Refuse a ``--class_list`` id that is not a class of the dataset (no training and no test image),
    naming the file and line: the reference would silently train a class it never sees."""
    present = np.zeros(ds.num_classes, bool)
    present[np.unique(ds.train_labels)] = True
    present[np.unique(ds.test_labels)] = True
    line_of = {str(c): n for c, n in zip(listed, lines)}
    for cls, ok in zip(ds.classes, present):
        if not ok and str(cls) in line_of:
            raise SemembedError(f"--class_list {path}, line {line_of[str(cls)]}: class {str(cls)!r} is not a class of "
                                f"dataset {ds.name} (no training or test image has it)")


def _few(ids, n: int = 5) -> str:
    ids = [repr(i) for i in ids]
    return ", ".join(ids[:n]) + (f", ... ({len(ids)} in all)" if len(ids) > n else "")


def check_class_overlap(embedding: str, dataset_name: str, data_root, ds, sizes: dict, flag: str = "--embedding") -> None:
    """No training image of any embedding class: error with ids of both sides; some classes empty: a warning."""
    from semembed.data import get_dataset

    present = np.zeros(ds.num_classes, bool)
    present[np.unique(ds.train_labels)] = True
    own = get_dataset(dataset_name, data_root, **sizes).classes
    if not present.any():
        raise SemembedError(
            f"{flag} {embedding}: none of its classes has a training image in dataset {dataset_name}; "
            f"the embedding's class ids are {_few(ds.classes)}, the dataset's {_few(own)} "
            "(use an embedding computed for this dataset's classes, e.g. with --str_ids / --class_list)")
    if not present.all():
        missing = [c for c, p in zip(ds.classes, present) if not p]
        print(f"warning: {flag} {embedding}: {len(missing)} of its {ds.num_classes} classes have no training "
              f"image in dataset {dataset_name} and cannot be learned: {_few(missing, 10)}", file=sys.stderr)
    wanted = {str(c) for c in ds.classes}
    dropped = [c for c in own if str(c) not in wanted]
    if dropped:
        print(f"warning: dataset {dataset_name}: {len(dropped)} of its {len(own)} classes are not in --embedding "
              f"{embedding}, their images are left out: {_few(dropped, 10)}", file=sys.stderr)


def _classes_with_images(ds) -> tuple[np.ndarray, np.ndarray]:
    """(num_classes,) masks: the classes with training images, the classes with test images."""
    trained = np.zeros(ds.num_classes, bool)
    trained[np.unique(ds.train_labels)] = True
    tested = np.zeros(ds.num_classes, bool)
    tested[np.unique(ds.test_labels)] = True
    return trained, tested


def warn_seen_test_classes(ds, class_ids: list) -> None:
    """Warn naming the test classes that also have training images: metric learning and AVSL are evaluated
    as zero-shot retrieval (an image folder whose ``test/`` repeats a ``train/`` class is not)."""
    trained, tested = _classes_with_images(ds)
    shared = [c for c, t, s in zip(class_ids, trained, tested) if s and t]
    if shared and len(shared) < int(tested.sum()):
        print(f"warning: dataset {ds.name}: {len(shared)} of the {int(tested.sum())} test classes also have training "
              f"images, so their retrieval is not zero-shot: {_few(shared, 10)}", file=sys.stderr)


def warn_untrained_classes(ds, class_ids: list) -> None:
    """Warn naming the classes with test images but no training image: a classifier cannot learn them, yet
    they count in the accuracy and the balanced accuracy (an image folder with a test-only class)."""
    trained, tested = _classes_with_images(ds)
    missing = [c for c, t, s in zip(class_ids, trained, tested) if s and not t]
    if missing:
        print(f"warning: dataset {ds.name}: {len(missing)} of its {ds.num_classes} classes have test images but no "
              f"training image, so they cannot be learned; they count in the accuracy and the balanced accuracy: "
              f"{_few(missing, 10)}", file=sys.stderr)


def resolve_dataset(config: TrainConfig) -> tuple[str, str | None]:
    if config.dataset.lower() == "default":
        from semembed.data import default_dataset

        return default_dataset()
    return config.dataset, config.data_root


def train(config: TrainConfig) -> TrainResult:
    """Run a training as configured (see :class:`TrainConfig`)."""
    config.check_flags_used()  # values, clashing outputs, ignored flags
    for path in (config.model_dump, config.weight_dump, config.feature_dump):
        if path:
            check_overwrite(path, config.overwrite)
    from semembed.io.formats import check_feature_dump_path, check_model_dump_path

    if config.feature_dump:
        check_feature_dump_path(config.feature_dump)
    if config.model_dump:
        check_model_dump_path(config.model_dump, "--model_dump")
    if config.weight_dump:
        check_model_dump_path(config.weight_dump, "--weight_dump")
    if config.cls_weight < 0:
        raise SemembedError(f"--cls_weight must be >= 0, got {config.cls_weight}")
    if config.snapshot_best and not config.snapshot_best_path:
        raise SemembedError("--snapshot_best needs a path to write the best model to")

    from semembed.training.strategy import is_chief, make_strategy

    strategy = make_strategy(config.gpus, config.cpu_replicas)  # before TF touches devices
    from semembed.training.trainer import Trainer, set_determinism

    set_determinism(config.seed, config.deterministic)

    import tensorflow as tf

    from semembed.losses import nearest_class_scores
    from semembed.training.schedules import LearningRateSchedule, default_epochs
    from semembed.training.tasks import get_task

    task_cls = get_task(config.task)
    optimizer = config.optimizer_config()
    name, root = resolve_dataset(config)
    flag = "--centroids" if config.task == "center_loss" else "--embedding"  # the option that named the file
    targets, class_ids, ds = load_targets(config.embedding, name, root, config.class_list, flag=flag,
                                          target_size=config.target_size, crop_size=config.crop_size)
    if config.zero_shot_images not in ("split", "all"):
        raise SemembedError(f"--zero_shot_images must be split or all, got {config.zero_shot_images!r}")
    if config.train_classes or config.test_classes or config.zero_shot_images == "all":
        from semembed.data import restrict_classes

        inner = ds
        ds = restrict_classes(ds, config.train_classes, config.test_classes, pool=config.zero_shot_images == "all")
        rows = [inner.class_indices[c] for c in ds.classes]  # class-embedding rows in the new label order
        targets, class_ids = targets[rows], [class_ids[r] for r in rows]
    if config.embedding == "onehot" and task_cls.name not in ("metric", "avsl"):  # (files: check_class_overlap)
        warn_untrained_classes(ds, class_ids)
    if task_cls.name in ("metric", "avsl") and not (config.train_classes or config.test_classes):
        warn_seen_test_classes(ds, class_ids)
    class_similarity = _class_similarity(config, class_ids)  # --hierarchy: checked before training
    replicas = strategy.num_replicas_in_sync
    sampler = None
    if config.m_per_class:  # P x K batches; learn_metric's default P fits the training classes (printed)
        from semembed.data.samplers import class_balanced_sampler

        sampler, note = class_balanced_sampler(config.m_per_class, config.batch_size, ds.train_labels, replicas,
                                               auto=config.m_per_class_auto, flags=config.batch_flags)
        if note:
            print(note)
        config = dataclasses.replace(config, batch_size=sampler.batch_size)
    if config.batch_size % replicas:
        raise SemembedError(f"--batch_size {config.batch_size} is not divisible by the {replicas} replicas")
    per_replica = config.batch_size // replicas
    # several workers must run the same number of equal steps: drop the last partial batch there
    from semembed.training.strategy import cluster_from_env

    drop = cluster_from_env() is not None
    if sampler is not None:
        steps = sampler.num_batches(ds.num_train)
    else:
        steps = ds.steps_per_epoch(config.batch_size, drop_remainder=drop)
    weights = None
    if config.sample_weights:
        from semembed.data.weights import read_sample_weights

        sw = read_sample_weights(config.sample_weights, ds, root)
        weights = sw.weights
        print(sw.summary())
    if config.max_steps_per_epoch:
        steps = min(steps, config.max_steps_per_epoch)
    epochs = default_epochs(config.schedule) if config.epochs is None else config.epochs
    schedule_steps = max(ds.num_train // config.batch_size, 1)  # the reference's decay denominator
    if config.schedule.name == "cosine":
        schedule_steps = steps  # per step over the steps this run really takes
    schedule = LearningRateSchedule(config.schedule, schedule_steps, epochs)

    task = task_cls.from_config(config, ds, targets)
    from semembed.training.tasks.graph import with_graph_regularization

    task = with_graph_regularization(task, config, ds)  # --graph_simnet
    metadata = model_metadata(config, ds, class_ids)
    val_bs = config.batch_size if config.val_batch_size is None else config.val_batch_size

    def train_data(epoch: int, ctx: tf.distribute.InputContext):
        return ds.train_dataset(per_replica, epoch=epoch, seed=config.seed, input_context=ctx, drop_remainder=drop,
                                as_dict=True, weights=weights, sampler=sampler)

    trainer = Trainer(
        task=task, strategy=strategy, train_data=train_data, val_data=lambda: ds.test_dataset(val_bs, as_dict=True),
        schedule=schedule, steps_per_epoch=steps, optimizer=optimizer, mixed_precision=config.mixed_precision,
        jit_compile=config.jit_compile, snapshot=config.snapshot,
        snapshot_best=config.snapshot_best, snapshot_best_path=config.snapshot_best_path,
        log_dir=config.log_dir, progress=not config.no_progress, chief=is_chief(strategy), model_metadata=metadata,
        signature=run_signature(config, targets, class_ids),
    )
    resumed = trainer.restore(config.initial_epoch)
    if resumed:
        print(f"Resuming from snapshot {config.snapshot} at epoch {trainer.state.epoch + 1}"
              + (" of the new-layer warm-up" if trainer.state.phase == "warmup" else ""))
    elif config.finetune:
        from semembed.models import load_weights_by_name

        report = load_weights_by_name(trainer.model, config.finetune, skip_mismatch=True)
        if not report["loaded"]:
            model_layers = [l.name for l in trainer.model.layers if l.weights]
            mismatched = f"; e.g. {report['mismatched'][0]}" if report["mismatched"] else ""
            raise SemembedError(
                f"--finetune {config.finetune}: no layer of the file matches the model by name and shape"
                f"{mismatched}. The file's weighted layers: {_few(report['skipped'], 8) or 'none'}; the model's "
                f"({config.architecture}): {_few(model_layers, 8)}. Fine-tune weights of the same architecture "
                "(e.g. another run's --weight_dump / --model_dump)")
        print(f"Loaded {len(report['loaded'])} layers from {config.finetune} ({len(report['skipped'])} skipped)")
    warm_epochs = config.finetune_init if config.finetune else config.warmup_epochs
    warming_up = trainer.state.phase == "warmup" if resumed else warm_epochs > 0
    if warming_up:
        print(f"Training the new layers for {warm_epochs} epochs" if config.finetune else
              f"Warm-up: training only {', '.join(task.warmup_description)} for {warm_epochs} epochs")
        main_schedule = trainer.schedule
        # a constant rate: the reference's DeViSE --init_lr, or the schedule's first rate (schedulers idle, §10)
        warmup_lr = config.warmup_lr or (None if config.finetune else main_schedule.epoch_lr(0))
        if warmup_lr:
            from semembed.training.schedules import ScheduleConfig

            trainer.schedule = LearningRateSchedule(
                ScheduleConfig(name="SGD", sgd_schedule=f"1:{warmup_lr!r},{warm_epochs}"),
                schedule_steps, warm_epochs)
        trainer.fit(warm_epochs, variables=_warmup_variables(trainer.models, task), phase="warmup")
        trainer.schedule = main_schedule
        trainer.state.epoch = config.initial_epoch
        trainer.state.global_step = 0
    trainer.fit(epochs)
    if config.precise_bn_batches:
        from semembed.training.precise_bn import recompute_batchnorm_statistics

        data = ds.train_dataset(config.batch_size, epoch=epochs, seed=config.seed, as_dict=True)
        used = recompute_batchnorm_statistics(trainer.model, (b["image"] for b in data), config.precise_bn_batches)
        if used:
            print(f"Recomputed the BatchNorm statistics over {used} training batches (--precise_bn_batches)")

    final = trainer.evaluate()
    features, probs, kept = predict(trainer, ds.test_dataset(val_bs, as_dict=True))
    test_labels = np.asarray(ds.test_labels)[kept]  # unreadable test images were skipped: align by index
    test_is_query = None if ds.test_is_query is None else np.asarray(ds.test_is_query)[kept]
    if len(kept) < len(ds.test_labels):
        print(f"warning: {len(ds.test_labels) - len(kept)} of {len(ds.test_labels)} test images were unreadable "
              "and are left out of the test metrics and the feature dump", file=sys.stderr)
    own_metrics = getattr(task, "test_metrics", None)  # a task ranking by its own similarity (e.g. avsl)
    if own_metrics is not None:
        if len(test_labels) > 1:
            final.update(own_metrics(features, test_labels, seed=config.seed, class_similarity=class_similarity))
    elif task_cls.name != "metric" and (probs is not None or features.shape[1] == targets.shape[1]):  # class scores
        scores = probs if probs is not None else np.asarray(nearest_class_scores(features, targets, config.loss))
        final["balanced_accuracy"] = balanced_accuracy(test_labels, scores.argmax(axis=1), ds.num_classes)
    elif task_cls.name == "metric" and len(test_labels) > 1:  # the field's retrieval figures on the test set
        from semembed.evaluation.metric_learning import RECALL_KS, metric_learning_metrics

        is_query = test_is_query
        if is_query is None:
            final.update(metric_learning_metrics(features, test_labels, recall_ks=RECALL_KS["cub"], seed=config.seed))
        else:  # In-Shop: queries against the gallery, nothing excluded (METRIC_LEARNING.md §11)
            if len(is_query) != len(features):
                raise SemembedError(f"dataset {ds.name}: {len(features)} test features for {len(is_query)} "
                                    "query/gallery images (unreadable images?)")
            final.update(metric_learning_metrics(features[~is_query], test_labels[~is_query],
                                                 query_features=features[is_query],
                                                 query_labels=test_labels[is_query],
                                                 recall_ks=RECALL_KS["inshop"], seed=config.seed))
        if class_similarity is not None and is_query is not None:
            raise SemembedError(f"--hierarchy: mAHP@250 is computed for a test set ranked against itself; dataset "
                                f"{ds.name} has queries and a gallery")
        if class_similarity is not None:  # mAHP@250 (SPEC.md §3) of the same ranking
            from semembed.evaluation.metric_learning import metrics_from_distances

            x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
            m = metrics_from_distances(lambda sl: -(x[sl] @ x.T), test_labels, recall_ks=(),
                                       class_similarity=class_similarity)
            final.update({k: v for k, v in m.items() if k.startswith("AHP")})
    if trainer.chief:
        from semembed.training.export import save_features, save_model, save_weights

        if config.weight_dump:
            save_weights(trainer.model, config.weight_dump, overwrite=config.overwrite, metadata=metadata)
        if config.model_dump:
            save_model(trainer.model, config.model_dump, overwrite=config.overwrite, metadata=metadata)
        if config.feature_dump:
            save_features(features, config.feature_dump, labels=test_labels, classes=class_ids, overwrite=config.overwrite,
                          is_query=test_is_query, probabilities=probs)
        print("Final test metrics: " + ", ".join(f"{k}: {v:.4f}" for k, v in final.items()))
    return TrainResult(trainer.model, trainer.history, final, features, probs, test_labels, class_ids)


def _class_similarity(config: TrainConfig, class_ids: list):
    """LCS-height similarities (C, C) of the classes in label order from ``config.hierarchy`` (None without)."""
    if not config.hierarchy:
        return None
    from semembed.taxonomy import ClassPairs, load_hierarchy

    hierarchy = load_hierarchy(config.hierarchy, is_a=config.is_a, str_ids=config.str_ids)
    return ClassPairs(hierarchy, list(class_ids)).lcs_height_similarity()  # names a class it does not have


def run_signature(config: TrainConfig, targets: np.ndarray, class_ids: list) -> dict:
    """What a snapshot's run must share with the run resuming it (checked on resume)."""
    import hashlib

    digest = hashlib.sha256(np.ascontiguousarray(targets, dtype=np.float32).tobytes())
    digest.update(repr([str(c) for c in class_ids]).encode("utf-8"))
    return {"task": config.task, "dataset": config.dataset, "class_embedding": digest.hexdigest()[:16],
            "batch_size": config.batch_size, "seed": config.seed, "lr_schedule": config.schedule.name,
            "m_per_class": config.m_per_class, "sample_weights": config.sample_weights,
            # the method's own settings (--hxe_alpha, --haf_gamma, AVSL's, ...), the classifier's loss and smoothing
            "task_options": json.dumps(config.task_options, sort_keys=True, default=str),
            "classifier_loss": config.classifier_loss, "label_smoothing": config.label_smoothing}


def model_metadata(config: TrainConfig, ds, class_ids) -> dict:
    """What saved models carry (``semembed.models.metadata``): preprocessing, class ids, task, architecture."""
    from semembed.data.preprocessing import Preprocessing

    return {"format": 1, "preprocessing": Preprocessing.from_dataset(ds).to_dict(), "classes": list(class_ids),
            "task": config.task, "architecture": config.architecture, "dataset": ds.name,
            "loss": config.loss if config.task == "embedding" else None,
            # what rebuilds the task's own head from a weight-only dump (semembed.training.rebuild)
            "task_options": dict(config.task_options), "classifier_loss": config.classifier_loss}


def _warmup_variables(models: dict, task) -> list:
    """Variables trained during the warm-up: the task's own choice (``Task.warmup_variables``), else
    its ``warmup_layers`` ('embedding', 'prob', ...) and the embedder's last layer (--finetune_init)."""
    own = task.warmup_variables(models)
    if own is not None:
        return list(own)
    model = models["model"]
    names = set(task.warmup_layers)
    layers = [l for l in model.layers if l.name in names]
    weighted = [l for l in model.layers if l.trainable_weights]
    if weighted:
        emb_out = [l for l in weighted if l.name not in ("prob",) and not l.name.startswith("batch_normalization")]
        if emb_out:
            layers.append(emb_out[-1])
    seen, out = set(), []
    for layer in layers:
        for v in layer.trainable_variables:
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
    if not out:
        raise SemembedError("--finetune_init: the model has no 'embedding' or 'prob' layer to train first")
    return out


def predict(trainer, data) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Embeddings, class probabilities (or None) and split positions (``index``) of a dict dataset in its order
    (the task's ``predict_step``); positions tell which images an unreadable file left out."""
    import tensorflow as tf

    from semembed.inference.runner import collect

    step = trainer.task.predict_step
    out = collect(tf.function(lambda batch: (*step(batch), batch["index"])), data)
    if not out:
        raise SemembedError("the test set yielded no image (all unreadable?)")
    features, probs, index = out
    return features, probs, np.asarray(index, dtype=np.int64)
