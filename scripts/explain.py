#!/usr/bin/env python3
"""Attribute the AVSL similarity of two images to levels and attributes, as a PNG. (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.explain import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
