#!/usr/bin/env python3
"""Train softmax + center loss (learned or fixed centroids). (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.learn_center_loss import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
