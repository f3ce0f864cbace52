#!/usr/bin/env python3
"""Train SimNet (pair similarity) on base classes, optionally adversarially (SimTrans). (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.learn_simnet import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
