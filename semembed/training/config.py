"""The resolved configuration of a training run (what the command line produces)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from semembed.training.schedules import ScheduleConfig


#: hyper-parameters of the baselines (``TrainConfig.task_options``), the reference's defaults
#: (learn_devise.py, learn_center_loss.py, learn_labelembedding.py); written once, here
METHOD_DEFAULTS: dict[str, dict] = {
    "devise": {"margin": 0.1, "init_epochs": 25, "ft_epochs": 75, "init_lr": 0.01, "ft_lr": 0.001},
    "center_loss": {"embed_dim": 100, "center_loss_weight": 0.1, "fixed_centroids": False},
    "label_embedding": {"embed_dim": 100, "tau": 2.0, "alpha": 0.9, "beta": 0.5},
    # hierarchy-aware classification (learn_classifier --loss NAME --hierarchy H); sources in semembed.losses.hierarchy
    "hxe": {"hxe_alpha": 0.1},  # Bertinetto et al. 2020 (tieredImageNet, iNat19)
    "soft_labels": {"soft_labels_beta": 10.0},  # Bertinetto et al. 2020 sweep 4..30
    "haframe": {"haf_gamma": 2.0, "haf_cos_weight": 0.4},  # Liang & Davis 2023, CIFAR-100 script
    "hiercos": {"hiercos_alpha": 0.05},  # Sani & Anand 2025, official scripts
}
#: learn_classifier --loss values that are their own tasks (a different head), not classifier losses
CLASSIFIER_LOSS_TASKS = {"haframe": "haframe", "hiercos": "hiercos"}
#: learn_classifier --loss values that need --hierarchy
HIERARCHY_LOSSES = ("hxe", "soft_labels", "haframe", "hiercos")
#: --finetune_init of the reference's baseline programs (learn_image_embeddings: TrainConfig.finetune_init)
BASELINE_FINETUNE_INIT = 3


def method_option(config: "TrainConfig", task: str, name: str):
    """``config.task_options[name]``, else the method's default from :data:`METHOD_DEFAULTS`."""
    return config.task_options.get(name, METHOD_DEFAULTS[task][name])


@dataclass
class MetricConfig:
    """The ``metric`` task's settings (``learn_metric``'s flags); defaults and their sources in METRIC_LEARNING.md."""

    loss: str = "contrastive"  # a name of semembed.losses.metric.METRIC_LOSSES
    loss_kwargs: dict = field(default_factory=dict)  # the loss's hyperparameters (constructor arguments)
    miner: str | None = None  # None: the loss's default (MS: multi_similarity; others: none)
    miner_kwargs: dict = field(default_factory=dict)
    distance: str | None = None  # None: the loss's default
    proxy_lr_multiplier: float | None = None  # proxies' lr / base lr; None: 100 for proxy_anchor (its repo), else 1
    xbm_size: int = 0  # > 0: cross-batch memory of this many embeddings around the pair loss
    xbm_start: int = 0  # XBM: iterations before the memory is used (research-xbm: 2000 at its scale)
    xbm_weight: float = 1.0  # XBM: weight of the memory term (research-xbm)
    xbm_ring: str = "fifo"  # fifo | xbm (research-xbm's pointer quirk)
    freeze_bn: bool = False  # BatchNorm in inference mode, statistics frozen (MS, Proxy-Anchor recipes)
    embedding_weight: float = 0.0  # > 0 with --embedding FILE: + weight x inv_corr onto the class embeddings


@dataclass
class TrainConfig:
    """Everything ``learn_image_embeddings`` needs; field names follow the reference's flags."""

    task: str = "embedding"  # a registered task: embedding, classifier (softmax baseline), metric, ...
    dataset: str = "default"
    data_root: str | None = None
    target_size: int | None = None  # shorter side before cropping (file datasets; None: the dataset's)
    crop_size: int | None = None  # network input size (file datasets; None: the dataset's)
    embedding: str = "onehot"  # class-embedding file, or "onehot" (cosine loss)
    class_list: str | None = None  # file of class ids to use, in order (with embedding="onehot")
    architecture: str = "simple"
    loss: str = "inv_corr"
    cls_weight: float = 0.0
    cls_base: str | None = None
    cls_lr_multiplier: float = 1.0  # learning-rate factor of the prob head's own layers (ours; 1 = reference)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    clipgrad: float = 10.0
    nesterov: bool = False
    optimizer: str = "sgd"  # sgd | adam | adamw
    momentum: float = 0.9  # SGD, as the reference
    weight_decay: float = 0.0  # extra decay on kernels: coupled L2 for sgd/adam, decoupled for adamw
    embedding_dim: int = 128  # output size of the metric task's embedding
    metric: MetricConfig = field(default_factory=MetricConfig)  # the metric task's loss, miner, XBM, ...
    train_classes: str | None = None  # zero-shot split: classes of the training images ("0-4", "a,b")
    test_classes: str | None = None  # ... and of the test images
    zero_shot_images: str = "split"  # split: the dataset's train/test images; all: every image of each class
    classifier_loss: str = "softmax"  # loss of --task classifier, a registered name (semembed.losses.classification)
    label_smoothing: float = 0.0  # classifier: target 1 - eps for the true class, eps / (C - 1) for the others
    task_options: dict = field(default_factory=dict)  # a method's own hyper-parameters (defaults: its Task class)
    warmup_lr: float | None = None  # constant rate of the --finetune_init phase (None: the schedule's)
    hierarchy: str | None = None  # learn_metric: taxonomy whose LCS heights give mAHP@250 of the test ranking
    is_a: bool = False  # ... its lines are "child parent"
    str_ids: bool = False  # ... its ids are strings
    precise_bn_batches: int = 0  # > 0: BN statistics recomputed at the final weights over this many batches
    warmup_epochs: int = 0  # run from scratch: epochs training only Task.warmup_variables at the first rate (§8, §10)
    sample_weights: str | None = None  # CSV: path (or index), weight
    m_per_class: int = 0  # > 0: m-per-class batches (batch_size / m classes x m images)
    m_per_class_auto: bool = False  # batch_size / m classes is a default: lowered to fit the classes and replicas
    batch_flags: str = ""  # the flags that set the m-per-class batches, as given (for error messages)
    mixed_precision: str = "off"  # off | float16 | bfloat16
    jit_compile: bool = False
    epochs: int | None = None
    initial_epoch: int = 0
    batch_size: int = 100
    val_batch_size: int | None = None
    snapshot: str | None = None
    snapshot_best: str | None = None  # metric name, e.g. "val_accuracy" or "val_loss"
    snapshot_best_path: str | None = None
    finetune: str | None = None
    finetune_init: int = 8
    gpus: int = 1
    cpu_replicas: int = 0  # > 1: split the CPU into this many logical devices (testing/debugging)
    read_workers: int = 8
    queue_size: int = 100
    model_dump: str | None = None
    weight_dump: str | None = None
    feature_dump: str | None = None
    log_dir: str | None = None
    no_progress: bool = False
    top_k_acc: tuple[int, ...] = ()
    seed: int = 0
    deterministic: bool = False
    max_steps_per_epoch: int | None = None  # cap (quick experiments and tests)
    overwrite: bool = False

    def check_values(self) -> None:
        """Refuse numbers out of range and outputs that clash, naming the flag, before anything is read.

        ``None`` is the default wherever a setting is optional (``epochs``: the schedule's); 0 or a
        negative number is an error, never read as "the default".

        Raises:
            SemembedError: e.g. ``--epochs must be a positive integer, got 0``.
        """
        from semembed.errors import SemembedError
        from semembed.validation import (
            check_disjoint_classes, check_distinct_outputs, check_int, check_number, integer_class_list,
        )

        check_int("--epochs", self.epochs, 1, optional=True,
                  note="" if self.schedule.name == "cosine" else " (leave it out for the schedule's default)")
        check_int("--initial_epoch", self.initial_epoch, 0)
        check_int("--batch_size", self.batch_size, 1)
        check_int("--val_batch_size", self.val_batch_size, 1, optional=True,
                  note=" (leave it out to use --batch_size)")
        check_int("--max_steps_per_epoch", self.max_steps_per_epoch, 1, optional=True,
                  note=" (leave it out for whole epochs)")
        check_int("--target_size", self.target_size, 1, optional=True)
        check_int("--crop_size", self.crop_size, 1, optional=True)
        check_int("--finetune_init", self.finetune_init, 0)
        check_int("--warmup_epochs", self.warmup_epochs, 0)
        check_int("--precise_bn_batches", self.precise_bn_batches, 0)
        check_int("--gpus", self.gpus, 0, note=" (0: all visible GPUs)")
        check_int("--cpu_replicas", self.cpu_replicas, 0, note=" (0: no logical CPU devices)")
        check_int("--read_workers", self.read_workers, 0)
        check_int("--queue_size", self.queue_size, 0)
        check_int("--seed", self.seed, 0)
        check_int("--m_per_class", self.m_per_class, 0, note=" (0: uniform batches)")
        check_int("--embedding_dim", self.embedding_dim, 1)
        for k in self.top_k_acc:
            check_int("--top_k_acc", k, 1)
        check_number("--clipgrad", self.clipgrad, 0, note=" (0: no clipping)")
        check_number("--momentum", self.momentum, 0, 1, high_open=True)
        check_number("--weight_decay", self.weight_decay, 0)
        check_number("--cls_weight", self.cls_weight, 0)
        check_number("--cls_lr_multiplier", self.cls_lr_multiplier, 0)
        check_number("--label_smoothing", self.label_smoothing, 0, 1, high_open=True)
        check_number("warmup_lr", self.warmup_lr, 0, low_open=True, optional=True)
        m = self.metric
        check_int("--xbm_size", m.xbm_size, 0)
        check_int("--xbm_start", m.xbm_start, 0)
        check_number("--xbm_weight", m.xbm_weight, 0)
        check_number("--embedding_weight", m.embedding_weight, 0)
        check_number("--proxy_lr_multiplier", m.proxy_lr_multiplier, 0, optional=True)
        if self.train_classes and self.test_classes:  # integer ids: checked before the dataset is read
            train, test = integer_class_list(self.train_classes), integer_class_list(self.test_classes)
            if train is not None and test is not None:
                check_disjoint_classes(self.train_classes, self.test_classes, sorted(set(train) & set(test)))
        self.schedule.check()
        if self.epochs is None:
            from semembed.training.schedules import default_epochs

            default_epochs(self.schedule)  # cosine has none: an error naming --epochs
        if self.initial_epoch and self.epochs is not None and self.initial_epoch >= self.epochs:
            raise SemembedError(f"--initial_epoch {self.initial_epoch} leaves none of the {self.epochs} epochs "
                                "(--epochs) to train")
        best = self.snapshot_best_path if self.snapshot_best else None
        check_distinct_outputs({"--model_dump": self.model_dump, "--weight_dump": self.weight_dump,
                                "--feature_dump": self.feature_dump, "--snapshot": self.snapshot,
                                "--snapshot_best (<snapshot>.best.keras)": best, "--log_dir": self.log_dir})

    def check_files(self) -> None:
        """``--finetune`` and an existing ``--snapshot`` must be files of the right kind (from their first bytes).

        Raises:
            SemembedError: saying what the file is and what was expected (e.g. a class-embedding ``.npz``
                given as ``--finetune``).
        """
        import os

        from semembed.errors import SemembedError
        from semembed.io.sniff import WEIGHT_FORMATS, describe_file, is_snapshot_file, looks_like_weights

        if self.finetune:
            if not os.path.isfile(self.finetune):
                raise SemembedError(f"--finetune {self.finetune}: no such file")
            if not looks_like_weights(self.finetune):
                raise SemembedError(f"--finetune {self.finetune} is {describe_file(self.finetune)}, not a weight "
                                    f"file; expected {WEIGHT_FORMATS}, loaded by layer name")
        if self.sample_weights and not os.path.isfile(self.sample_weights):
            raise SemembedError(f"--sample_weights {self.sample_weights}: no such file (expected a CSV with the "
                                "columns path (or index) and weight, e.g. from compute_sample_weights)")
        snap = self.snapshot
        if snap and os.path.exists(snap) and not is_snapshot_file(snap) and not looks_like_weights(snap):
            raise SemembedError(f"--snapshot {snap} is {describe_file(snap)}: neither a semembed snapshot (an .npz "
                                "with a 'meta' array, written after every epoch of a training run and resumed "
                                f"exactly) nor a weight file to resume from at --initial_epoch ({WEIGHT_FORMATS}); "
                                "name a new file to start a run")

    def check_flags_used(self) -> None:
        """Refuse bad values (:meth:`check_values`), unusable input files (:meth:`check_files`) and a flag the
        chosen task or optimizer would ignore (given = differs from the default)."""
        from semembed.errors import SemembedError

        self.check_values()
        self.check_files()
        default = TrainConfig()
        if self.warmup_epochs and self.finetune:
            raise SemembedError("--warmup_epochs is the warm-up of a run from scratch; with --finetune use "
                                "--finetune_init")
        unused = dict(UNUSED_BY_TASK.get(self.task, {}))
        if self.optimizer != "sgd":
            unused.update({"momentum": f"--optimizer {self.optimizer} (SGD only)",
                           "nesterov": f"--optimizer {self.optimizer} (SGD only)"})
        if self.cls_weight <= 0 and self.task == "embedding":
            unused.update({"cls_base": "without --cls_weight > 0 (no head)",
                           "cls_lr_multiplier": "without --cls_weight > 0 (no head)"})
        given = [(field, why) for field, why in unused.items() if getattr(self, field) != getattr(default, field)]
        if given:
            raise SemembedError("; ".join(f"--{f} is not used by {why}" for f, why in given))

    def optimizer_config(self):
        """The :class:`~semembed.training.optimizers.OptimizerConfig` these flags describe."""
        from semembed.training.optimizers import OptimizerConfig

        return OptimizerConfig(name=self.optimizer, momentum=self.momentum, nesterov=self.nesterov,
                               weight_decay=self.weight_decay, clipnorm=self.clipgrad if self.clipgrad > 0 else None)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


#: TrainConfig fields each built-in task ignores (a task not listed here is not checked)
_HEAD = ("cls_weight", "cls_base", "cls_lr_multiplier")
UNUSED_BY_TASK = {
    "embedding": {"embedding_dim": "--task embedding (the class embedding sets the size)",
                  "hierarchy": "--task embedding (evaluate_retrieval ranks by a taxonomy)"},
    "classifier": {f: "--task classifier" for f in ("loss", "embedding_dim", "hierarchy") + _HEAD},
    "metric": {f: "--task metric" for f in ("loss", "top_k_acc") + _HEAD},
}


#: ``learn_metric``'s defaults where they differ from ``learn_image_embeddings``'s (the one place they are written).
#: Adam at a constant 1e-3 (the SGD schedule without its plateau: no schedule of the papers watches a test loss,
#: and the metric task reports none; --sgd_patience switches the plateau on, on the training loss): our networks
#: train from scratch; the papers fine-tune ImageNet networks at 1e-4 (Proxy-Anchor, AdamW) or 3e-5 (MS, Adam).
#: 60 epochs and a 512-d embedding as Proxy-Anchor's recipe; batches of P=16 classes x K=5 images as
#: research-ms-loss's (80), P lowered to the number of training classes when not given.
LEARN_METRIC_DEFAULTS = dict(
    optimizer="adam", lr_schedule="SGD", sgd_lr=1e-3, sgd_min_lr=1e-6, epochs=60, embedding_dim=512,
    classes_per_batch=16, images_per_class=5, loss="multi_similarity", snapshot_best="val_Recall@1",
)
#: what ``--snapshot_best`` may pick the best epoch of a ``metric`` run by: retrieval figures of the test images
#: (the papers report their best test epoch, METRIC_LEARNING.md §8, §11), or the training loss; the metric task
#: reports no test loss (zero-shot test classes have no proxies; file-order test batches hold one class)
METRIC_SNAPSHOT_BEST = ("val_Recall@1", "val_mAP@R", "val_R-Precision", "loss")

#: ``--method avsl``'s options (``TrainConfig.task_options``) and defaults: METRIC_LEARNING.md §10's official
#: recipes (CUB's loss weights); lr multipliers ours (see semembed/training/tasks/avsl.py)
AVSL_DEFAULTS = dict(
    embeddings_dim=512, feature_dim_list=None, avsl_m=0.5, topk_corr=128, prob_gamma=10.0, index_p=2.0,
    pa_alpha=16.0, pa_pos_margin=1.8, pa_neg_margin=2.2, final_pa_alpha=16.0, final_pa_pos_margin=1.8,
    final_pa_neg_margin=2.2, loss0_weight=0.5, loss1_weight=1.0, loss2_weight=0.5,  # CUB's w0, w1, w2
    embedder_lr_multiplier=1.0, collector_lr_multiplier=100.0,
    use_proxy=True,  # the official --use_proxy (its recipes all set it); False: the batch is the column set
)

