"""Inference for users: run a trained model over image files, predict classes, index and search.

* :mod:`~semembed.inference.model`: load ``.keras`` / reference ``.h5`` / ``.weights.h5`` models with
  their stored preprocessing (:class:`semembed.data.preprocessing.Preprocessing`);
* :mod:`~semembed.inference.images`: folders, list files, single files;
* :mod:`~semembed.inference.embed`: features (and class probabilities) of images, batched;
* :mod:`~semembed.inference.predict`: top-k classes with their taxonomy paths;
* :mod:`~semembed.inference.index`: exact and faiss nearest-neighbour indexes, on disk;
* :mod:`~semembed.inference.thumbnails`: a PNG grid of search results;
* :mod:`~semembed.inference.runner`: the one loop that runs a network over batches.

The programs ``semembed embed``, ``predict``, ``index`` and ``search`` are thin layers over these.
"""
