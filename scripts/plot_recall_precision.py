#!/usr/bin/env python3
"""Precision-recall curves of feature files in one PNG. (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.plot_recall_precision import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
