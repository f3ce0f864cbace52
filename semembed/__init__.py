"""semembed: hierarchy-based semantic image embeddings (Keras 3 / TensorFlow 2).

Importing the package is cheap: the taxonomy, class-embedding and evaluation
stages never import TensorFlow or Keras.
"""

__version__ = "0.1.0"
