#!/usr/bin/env python3
"""Top-1 error against mistake severity / hierarchical distance@k from result JSON files. (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.plot_tradeoff import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
