#!/usr/bin/env python3
"""Train the softmax baseline (label smoothing, --loss choices). (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.learn_classifier import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
