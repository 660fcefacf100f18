"""Recording inspection: what a file really is, what HubSpot will do with it, and fixes.

Qt-free. ``probe`` reads headers only; ``analyse`` streams the samples once; ``inspect`` gives the
verdicts; ``swap_channels``, ``merge_legs`` and ``convert`` write new files (``paths.fixes_dir()``
by default) and never touch the original; ``prefill_from_filename`` reads a PBX's file names.
"""

from __future__ import annotations

from desktop_app.audio.analysis import AnalysisError, Cancelled, analyse
from desktop_app.audio.fixes import FixError, convert, merge_legs, swap_channels
from desktop_app.audio.model import (
    CODES,
    Analysis,
    ChannelStats,
    Fix,
    Inspection,
    Prefill,
    ProbeResult,
    Problem,
)
from desktop_app.audio.prefill import prefill_from_filename
from desktop_app.audio.probe import probe
from desktop_app.audio.verdicts import fixes_for, inspect

__all__ = [
    "CODES",
    "Analysis",
    "AnalysisError",
    "Cancelled",
    "ChannelStats",
    "Fix",
    "FixError",
    "Inspection",
    "Prefill",
    "ProbeResult",
    "Problem",
    "analyse",
    "convert",
    "fixes_for",
    "inspect",
    "merge_legs",
    "prefill_from_filename",
    "probe",
    "swap_channels",
]
