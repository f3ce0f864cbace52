#!/usr/bin/env python3
"""Semantic embeddings vs. a softmax baseline on the embedded default dataset (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.demo import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
