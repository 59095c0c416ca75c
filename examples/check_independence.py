#!/usr/bin/env python
"""The main job: the answer key of exercises Q1.1–Q1.3, or free mode on any network.

    python examples/check_independence.py                 # answer key, exit 0 iff all match
    python examples/check_independence.py --json
    python examples/check_independence.py --edges "A->B, B->C" "A ⊥ C | B"
    python examples/check_independence.py --help
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import warnings  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)  # pgmpy deprecation notices on import

from pgm.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
