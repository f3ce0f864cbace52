#!/usr/bin/env python3
"""The k nearest indexed images of query images (CSV, thumbnail grid). (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.search import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
