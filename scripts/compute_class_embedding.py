#!/usr/bin/env python3
"""Compute class embeddings from a taxonomy (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.compute_class_embedding import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
