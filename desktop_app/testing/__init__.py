"""What exists only so that tests, benchmarks and the bundle's self-test can reach inside the app: the one
place production code is wired to a test.

- ``crash_point(step, when)``: the pipeline and the transcript poster call it before and after each step
  that reaches HubSpot; with ``CALLRELAY_CRASH_AT=<step>:<before|after>`` in the environment the process
  ends there as a kill would (exit status 137, no cleanup), so the tests can prove that a crash at any
  point never logs a call twice. Without the variable it does nothing.
- ``desktop_app.testing.fill.insert_submissions``: many finished submissions written into a history at once (benchmarks,
  screenshots, the history page's tests).
- ``desktop_app.testing.whisper_model``: the tests' Whisper model, joined from its two PyPI packages
  (``scripts/whisper_test_model.py``, the transcription tests and ``benchmarks/transcribe.py``).

Only foundations are imported here (``os``; ``fill`` the ``dbfile`` opener), so any layer may call it.
"""

from __future__ import annotations

import os

CRASH_ENV = "CALLRELAY_CRASH_AT"  # "<step>:<before|after>": the process dies there (exit status 137)


def crash_point(step: str, when: str) -> None:
    """End the process at once, as a kill would (no cleanup, no flush), when ``CALLRELAY_CRASH_AT`` names
    this point (``<step>:<when>``, when is ``before`` or ``after``)."""
    if os.environ.get(CRASH_ENV) == f"{step}:{when}":
        os._exit(137)
