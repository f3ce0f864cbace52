"""Load weights by layer name (Keras-2 ``.h5``, our ``.weights.h5``/``.keras``) and write legacy files.

Matching rules, in order:

1. Explicitly named layers match by name. Keras-2.2-era ResNet-50 names (``conv1``,
   ``bn_conv1``, ``res2a_branch2a``, ``bn2a_branch1``, …) are mapped onto the current
   keras.applications names when the model has the new name but not the old one.
2. Layers with automatic names (``conv2d_7``, ``batch_normalization_12``, ``dense_1``, …) are
   paired in file order with the model's automatically named layers of the same kind and the
   same weight shapes: Keras 2 numbered them per session, so the numbers themselves are
   unreliable, but the order is the topological order of the network.

Each pair's variables are matched by variable name (``kernel``, ``gamma``, …) or, where the file
has none, by position, and shapes must agree. Nothing is assigned unless the whole plan is
valid (or ``skip_mismatch`` drops the layers that do not fit).
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from typing import Iterator

import h5py
import keras
import numpy as np

from semembed.errors import SemembedError
from semembed.io import atomic_path
from semembed.models.heads import build_embedding_model
from semembed.models.naming import auto_prefix
from semembed.models.weight_files import FileLayer, read_weight_file

logger = logging.getLogger(__name__)

LEGACY_RESNET_BN_EPSILON = 1e-3  # keras-applications ResNet50 of the Keras 2.2 era used the BN default
_MAX_LISTED = 25

_OLD_BLOCK = re.compile(r"^(res|bn)([2-5])([a-z])_branch(2a|2b|2c|1)$")
_BRANCH = {"2a": 1, "2b": 2, "2c": 3, "1": 0}


def legacy_resnet_name(old: str) -> str | None:
    """Keras-2.2 keras-applications ResNet-50 layer name → current keras.applications name."""
    if old == "conv1":
        return "conv1_conv"
    if old == "bn_conv1":
        return "conv1_bn"
    m = _OLD_BLOCK.match(old)
    if not m:
        return None
    kind, stage, letter, branch = m.groups()
    return f"conv{stage}_block{ord(letter) - 96}_{_BRANCH[branch]}_{'conv' if kind == 'res' else 'bn'}"


def weighted_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Layers that own weights, nested models flattened, in model order."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from weighted_layers(layer)
        elif layer.weights:
            yield layer


def _shapes(layer: keras.layers.Layer) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(d) for d in w.shape) for w in layer.weights)


def _kind(name: str) -> str | None:
    """The automatic-name kind (``conv2d``, ``batch_normalization``, …) or ``None`` for explicit names."""
    prefix = auto_prefix(name)
    return prefix if prefix not in (None, "input") else None


def _pair_variables(layer: keras.layers.Layer, item: FileLayer) -> tuple[list | None, str | None]:
    """Order the file arrays like ``layer.weights``; return (arrays, None) or (None, reason)."""
    names = [w.name.split("/")[-1] for w in layer.weights]
    if len(item.arrays) != len(names):
        return None, f"{len(item.arrays)} arrays in the file, {len(names)} weights in the model layer ({', '.join(names)})"
    if all(v is not None for v in item.var_names) and sorted(item.var_names) == sorted(names):
        arrays = [item.arrays[item.var_names.index(n)] for n in names]
    else:
        arrays = list(item.arrays)
    for w, n, a in zip(layer.weights, names, arrays):
        if tuple(a.shape) != tuple(int(d) for d in w.shape):
            return None, f"{n}: file shape {tuple(a.shape)} != model shape {tuple(int(d) for d in w.shape)}"
    return arrays, None


def plan_assignment(model: keras.Model, file_layers: list[FileLayer]) -> dict:
    """Decide which file layer goes into which model layer; assigns nothing.

    Returns:
        dict with ``pairs`` [(model layer, file layer name, arrays)], ``mismatched`` [messages],
        ``unused_file`` [file layer names], ``unfilled_model`` [model layer names],
        ``renamed`` {file name: model name} for legacy ResNet names.
    """
    layers = list(weighted_layers(model))
    by_name = {layer.name: layer for layer in layers}
    pairs, mismatched, unused_file, renamed = [], [], [], {}
    filled: set[str] = set()
    auto_file: dict[tuple, list[FileLayer]] = defaultdict(list)

    def accept(layer, item: FileLayer) -> None:
        arrays, reason = _pair_variables(layer, item)
        if arrays is None:
            mismatched.append(f"{item.name} -> {layer.name}: {reason}")
            unused_file.append(item.name)
        else:
            pairs.append((layer, item.name, arrays))
            filled.add(layer.name)

    for item in file_layers:
        kind = _kind(item.name)
        if kind is not None:
            auto_file[(kind, item.shapes)].append(item)
            continue
        target = item.name
        if target not in by_name:
            new = legacy_resnet_name(target)
            if new is not None and new in by_name:
                renamed[item.name] = new
                target = new
        if target in by_name and target not in filled:
            accept(by_name[target], item)
        else:
            unused_file.append(item.name)
    auto_model: dict[tuple, list] = defaultdict(list)
    for layer in layers:
        kind = _kind(layer.name)
        if kind is not None:
            auto_model[(kind, _shapes(layer))].append(layer)
    for key, items in auto_file.items():
        targets = auto_model.get(key, [])
        for item, layer in zip(items, targets):
            accept(layer, item)
        unused_file.extend(item.name for item in items[len(targets):])
    unfilled = [layer.name for layer in layers if layer.name not in filled]
    return {
        "pairs": pairs, "mismatched": mismatched, "unused_file": unused_file, "unfilled_model": unfilled,
        "renamed": renamed, "file_shapes": {item.name: item.shapes for item in file_layers},
        "model_shapes": {layer.name: _shapes(layer) for layer in layers if layer.name in unfilled},
    }


def _listing(title: str, names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = f" … and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return f"\n  {title} ({len(names)}): {shown}{more}"


def _describe_problems(path: str, plan: dict, require_complete: bool) -> str:
    text = f"{os.fspath(path)}: weights do not fit the model"
    if plan["mismatched"]:
        text += _listing("shape/count mismatches", plan["mismatched"])
    rest = [n for n in plan["unused_file"] if not any(m.startswith(n + " ->") for m in plan["mismatched"])]
    if rest:
        text += _listing("file layers with no matching model layer", [_with_shapes(n, plan["file_shapes"]) for n in rest])
    if require_complete and plan["unfilled_model"]:
        unfilled = [_with_shapes(n, plan["model_shapes"]) for n in plan["unfilled_model"]]
        text += _listing("model layers without weights in the file", unfilled)
    return text


def _with_shapes(name: str, shapes: dict) -> str:
    """Auto-named layers pair by kind and shapes, so show the shapes that found no partner."""
    return name if _kind(name) is None else f"{name} {list(shapes.get(name, ()))}"


def _apply(plan: dict, legacy_bn_epsilon: bool) -> list[str]:
    notes = []
    for layer, _, arrays in plan["pairs"]:
        layer.set_weights(arrays)
    if legacy_bn_epsilon:
        loaded = {layer.name: layer for layer, _, _ in plan["pairs"]}
        changed = [loaded[n] for n in plan["renamed"].values() if isinstance(loaded.get(n), keras.layers.BatchNormalization)]
        for layer in changed:
            layer.epsilon = LEGACY_RESNET_BN_EPSILON
        if changed:
            notes.append(f"set epsilon={LEGACY_RESNET_BN_EPSILON} on {len(changed)} BatchNormalization layers loaded from Keras-2.2 ResNet names")
    return notes


def load_weights_by_name(
    model: keras.Model, path: str | os.PathLike, skip_mismatch: bool = True, legacy_bn_epsilon: bool = True
) -> dict:
    """Assign weights from ``path`` to the layers of ``model`` by layer name (for ``--finetune``).

    Args:
        model: target model (built).
        path: Keras-2 ``.h5`` (full model or weights only), Keras-3 ``.weights.h5`` or ``.keras``.
        skip_mismatch: skip file layers that have no counterpart or a different shape; if
            False any such layer raises ``SemembedError`` listing them (and nothing is assigned).
        legacy_bn_epsilon: when Keras-2.2 ResNet-50 names were mapped, give those BN layers the
            ε = 1e-3 they were trained with (current keras.applications uses 1.001e-5).

    Returns:
        ``{'loaded': [model layer names], 'skipped': [file layer names], 'unfilled': [model
        layer names left as they were], 'mismatched': [messages], 'renamed': {old: new},
        'notes': [...]}``.
    """
    plan = plan_assignment(model, read_weight_file(path))
    if not skip_mismatch and (plan["unused_file"] or plan["mismatched"]):
        raise SemembedError(_describe_problems(os.fspath(path), plan, require_complete=False))
    notes = _apply(plan, legacy_bn_epsilon)
    report = {
        "loaded": [layer.name for layer, _, _ in plan["pairs"]],
        "skipped": list(plan["unused_file"]),
        "unfilled": list(plan["unfilled_model"]),
        "mismatched": list(plan["mismatched"]),
        "renamed": dict(plan["renamed"]),
        "notes": notes,
    }
    logger.info("loaded %d layers from %s, skipped %d", len(report["loaded"]), os.fspath(path), len(report["skipped"]))
    return report


def load_weights_strict(model: keras.Model, path: str | os.PathLike, legacy_bn_epsilon: bool = True) -> dict:
    """Like :func:`load_weights_by_name`, but every file layer and every model weight must find a home."""
    plan = plan_assignment(model, read_weight_file(path))
    if plan["unused_file"] or plan["mismatched"] or plan["unfilled_model"]:
        raise SemembedError(_describe_problems(os.fspath(path), plan, require_complete=True))
    notes = _apply(plan, legacy_bn_epsilon)
    return {"loaded": [layer.name for layer, _, _ in plan["pairs"]], "renamed": dict(plan["renamed"]), "notes": notes}


def load_reference_model(
    path: str | os.PathLike,
    architecture: str,
    num_classes: int | None,
    embedding_dim: int,
    loss: str = "inv_corr",
    input_shape: tuple | None = None,
    input_channels: int = 3,
    cls_base: str | int | None = None,
    legacy_bn_epsilon: bool = True,
) -> keras.Model:
    """Rebuild a released reference model and load its Keras-2 ``.h5`` weights by layer name.

    Builds ``build_embedding_model(architecture, embedding_dim, loss, num_classes, cls_base)``
    (outputs ``[l2norm, prob]`` for the released files) and assigns every stored array; the
    stored model config (with its marshalled ``l2norm`` Lambda) is never executed.

    Args:
        path: the reference's ``.h5`` (full model or weights only).
        architecture: name used to train it (e.g. ``"resnet-110-wfc"``, ``"resnet-50"``).
        num_classes: classes of the ``prob`` head, or ``None`` for files without one.
        embedding_dim: embedding size D (for the released files D = number of classes).
        loss: ``inv_corr`` for the released models.
        input_shape / input_channels: as :func:`build_embedding_model`.
        cls_base: base layer of the ``prob`` head if it was not the embedding.
        legacy_bn_epsilon: see :func:`load_weights_by_name`.

    Raises:
        SemembedError: listing file layers without a home, model layers left without weights
        and shape mismatches.
    """
    model = build_embedding_model(
        architecture, embedding_dim, loss=loss, num_classes=num_classes, cls_base=cls_base,
        input_shape=input_shape, input_channels=input_channels,
    )
    report = load_weights_strict(model, path, legacy_bn_epsilon=legacy_bn_epsilon)
    for note in report["notes"]:
        logger.info("%s: %s", os.fspath(path), note)
    return model


def _write_str_list_attr(group: h5py.Group, name: str, values: list[str]) -> None:
    data = np.array([v.encode("utf8") for v in values], dtype="S") if values else np.array([], dtype="S1")
    chunks = max(1, int(np.ceil(data.nbytes / 60000)))
    if chunks == 1:
        group.attrs[name] = data
    else:
        for i, part in enumerate(np.array_split(data, chunks)):
            group.attrs[f"{name}{i}"] = part


def save_legacy_h5(model: keras.Model, path: str | os.PathLike, overwrite: bool = True,
                   metadata: dict | None = None) -> None:
    """Write ``model``'s weights in the Keras-2 weights-only HDF5 layout (atomically).

    Root attributes ``layer_names``, ``backend``, ``keras_version``; one group per layer with a
    ``weight_names`` attribute (``layer/kernel:0`` …) and one dataset per weight. Nested models
    are flattened. The reference's ``load_weights(by_name=True)`` and our loaders read it.
    """
    layers = list(_all_layers(model))
    with atomic_path(path, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            _write_str_list_attr(f, "layer_names", [layer.name for layer in layers])
            f.attrs["backend"] = b"tensorflow"
            f.attrs["keras_version"] = b"2.2.4"
            for layer in layers:
                group = f.create_group(layer.name)
                names = [f"{layer.name}/{w.name.split('/')[-1]}:0" for w in layer.weights]
                _write_str_list_attr(group, "weight_names", names)
                for wname, w in zip(names, layer.weights):
                    group.create_dataset(wname, data=keras.ops.convert_to_numpy(w.value))
        if metadata:
            from semembed.models.metadata import write_metadata

            write_metadata(tmp, metadata)


def _all_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer
