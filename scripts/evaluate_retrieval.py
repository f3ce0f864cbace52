#!/usr/bin/env python3
"""Evaluate hierarchical precision, mAHP, mAP and Recall@K of image features (reference flags)."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from semembed.cli.evaluate_retrieval import main
if __name__ == "__main__":
    sys.exit(main())
