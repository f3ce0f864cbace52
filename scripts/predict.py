#!/usr/bin/env python3
"""Top-k classes of image files with probabilities and taxonomy paths. (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.predict import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
