"""Write what a training run produces: models, weights, test-set features.

All writes are atomic.  ``.h5`` model/weight dumps use the reference's legacy
Keras-2 layout (so the reference's tools and ``load_weights(by_name=True)``
read them); other names use Keras 3's native formats.
"""

from __future__ import annotations

import pickle

import keras
import numpy as np

from semembed.errors import SemembedError
from semembed.io import atomic_path
from semembed.io.formats import check_feature_dump_path
from semembed.models.metadata import write_metadata


def save_model(model: keras.Model, path: str, overwrite: bool = False, metadata: dict | None = None) -> None:
    """Whole model: ``.keras`` (native), or legacy Keras-2 ``.h5`` when the name ends so.

    ``metadata`` (preprocessing, class ids, task; :mod:`semembed.models.metadata`) is stored in the file.
    """
    if path.lower().endswith(".h5") or path.lower().endswith(".hdf5"):
        from semembed.models import save_legacy_h5

        save_legacy_h5(model, path, overwrite=overwrite, metadata=metadata)
        return
    if not path.endswith(".keras"):
        raise SemembedError(f"--model_dump {path}: use a name ending in .keras (Keras 3) or .h5 (legacy Keras 2)")
    with atomic_path(path, overwrite=overwrite) as tmp:
        model.save(tmp)
        if metadata:
            write_metadata(tmp, metadata)


def save_weights(model: keras.Model, path: str, overwrite: bool = False, metadata: dict | None = None) -> None:
    """Weights only: ``*.weights.h5`` (Keras 3), or the legacy Keras-2 layout for other ``.h5`` names."""
    if path.endswith(".weights.h5"):
        with atomic_path(path, overwrite=overwrite) as tmp:
            model.save_weights(tmp)
            if metadata:
                write_metadata(tmp, metadata)
        return
    from semembed.models import save_legacy_h5

    save_legacy_h5(model, path, overwrite=overwrite, metadata=metadata)


def save_features(features: np.ndarray, path: str, labels: np.ndarray | None = None, overwrite: bool = False,
                  is_query: np.ndarray | None = None, classes: list | None = None,
                  probabilities: np.ndarray | None = None) -> None:
    """Test-set features: the reference pickle ``{'feat': {i: vector}}``, or ``.npz`` (``feat``, ``labels``;
    ``classes``: the class ids that ``labels`` index, so the evaluation programs read class ids and not
    row numbers of the class embedding; ``is_query`` for query/gallery datasets such as In-Shop:
    True = query, False = gallery image; ``prob``: the model's class probabilities, columns in
    ``classes`` order, for ``evaluate_classification_accuracy --predictions``).  Other extensions than
    .npz, .pickle, .pkl are refused."""
    check_feature_dump_path(path)
    features = np.asarray(features)
    if classes is not None and labels is None:
        raise SemembedError("save_features: 'classes' describes 'labels', which are not given")
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            if path.lower().endswith(".npz"):
                arrays = {"feat": features}
                if labels is not None:
                    arrays["labels"] = np.asarray(labels)
                if classes is not None:
                    arrays["classes"] = np.asarray(list(classes))
                if is_query is not None:
                    arrays["is_query"] = np.asarray(is_query, dtype=bool)
                if probabilities is not None:
                    arrays["prob"] = np.asarray(probabilities, dtype=np.float32)
                np.savez(f, **arrays)
            else:
                pickle.dump({"feat": dict(enumerate(features))}, f, protocol=4)
