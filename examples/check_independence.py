#!/usr/bin/env python
"""The main job: the answer key of exercises Q1.1–Q1.3, or free mode on any network (the
``pgm-check`` command): a thin wrapper over :mod:`pgm.cli`.

    python examples/check_independence.py                 # answer key, exit 0 iff all match
    python examples/check_independence.py --json
    python examples/check_independence.py --edges "A->B, B->C" "A ⊥ C | B"
    python examples/check_independence.py --help
"""
import warnings

warnings.filterwarnings("ignore", category=FutureWarning)  # pgmpy deprecation notices on import

from pgm.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
