#!/usr/bin/env python3
"""Save a nearest-neighbour index of images (exact or faiss). (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.index import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
