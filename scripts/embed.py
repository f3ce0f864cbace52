#!/usr/bin/env python3
"""Embeddings of image files with a trained model. (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.embed import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
