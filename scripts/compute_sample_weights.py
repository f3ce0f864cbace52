#!/usr/bin/env python3
"""Sample weights of web images from SimNet similarities (CSV + PNGs). (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.compute_sample_weights import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
