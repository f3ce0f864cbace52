#!/usr/bin/env python3
"""Evaluate flat and hierarchical classification accuracy (reference flags)."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.evaluate_classification_accuracy import main
if __name__ == "__main__":
    sys.exit(main())
