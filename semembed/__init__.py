"""semembed: hierarchy-based semantic image embeddings (Keras 3 / TensorFlow 2).

Importing the package is cheap: the taxonomy, class-embedding and evaluation
stages never import TensorFlow or Keras.

Models saved by this package contain its custom layers (``L2Normalize``,
``ChannelPadding``) and losses. They are registered with Keras whenever both
``semembed`` and ``keras`` are imported, in either order, so that
``keras.models.load_model("m.keras")`` works after a plain ``import semembed``:
if Keras is already loaded they are registered now, otherwise a one-shot import
hook registers them right after Keras is first imported. Importing semembed
itself never imports Keras.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys as _sys

__version__ = "0.1.0"


def register_keras_objects() -> None:
    """Register semembed's custom layers and losses with Keras (imports Keras)."""
    import semembed.losses.embedding  # noqa: F401  (the decorators register)
    import semembed.models.layers  # noqa: F401
    import semembed.models.simnet  # noqa: F401  (AllPairs)
    import semembed.models.avsl  # noqa: F401  (AVSLEmbedder: models of learn_metric --method avsl)
    import semembed.losses.hierarchy  # noqa: F401  (HAFrame / Hier-COS layers)
    import semembed.losses.metric  # noqa: F401  (metric losses, proxies, XBM)


class _RegisterAfterKerasImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loaders of ``keras`` and ``tensorflow``.

    After either has been executed it tries to register our objects, and removes itself once that
    worked. (``import tensorflow`` imports Keras halfway through its own initialisation, when the
    registration cannot import yet; it then succeeds once TensorFlow has finished.)
    """

    WATCHED = ("keras", "tensorflow")

    def __init__(self):
        self._busy = False

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.WATCHED or self._busy:
            return None
        self._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        original, finder = spec.loader, self

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return original.create_module(spec)

            def exec_module(self, module):
                original.exec_module(module)
                finder.try_register()

        spec.loader = _Loader()
        return spec

    def try_register(self) -> None:
        if "keras" not in _sys.modules:
            return
        try:
            register_keras_objects()
        except Exception:  # noqa: BLE001  a module is still being initialised; the next watched import retries
            return
        _sys.meta_path[:] = [f for f in _sys.meta_path if f is not self]


if "keras" in _sys.modules:
    register_keras_objects()
elif not any(isinstance(f, _RegisterAfterKerasImport) for f in _sys.meta_path):
    _sys.meta_path.insert(0, _RegisterAfterKerasImport())
