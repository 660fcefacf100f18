"""Prefill from PBX file names: built-in Asterisk/FreePBX and 3CX patterns, and patterns from the settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from desktop_app import paths
from desktop_app.audio import prefill_from_filename

from . import gen


@pytest.mark.parametrize("name,direction,from_,to", [
    ("out-5551234567-101-20240115-093000-1705311000.42.wav", "outbound", "101", "+15551234567"),
    ("in-101-+442071234567-20240115-093000-1705311000.42.wav", "inbound", "+442071234567", "101"),
    ("external-201-5557654321-20240115-093000-1705311000.42.wav", "inbound", "+15557654321", "201"),
    ("q-600-5557654321-20240115-093000-1705311000.42.WAV", "inbound", "+15557654321", "600"),
    ("internal-102-101-20240115-093000-1705311000.42.wav", None, "101", "102"),
])
def test_asterisk_freepbx_names(name: str, direction: str | None, from_: str, to: str) -> None:
    p = prefill_from_filename(name, [])
    assert p.pattern == "asterisk"
    assert p.start == "2024-01-15T09:30:00"
    assert (p.direction, p.from_number, p.to_number) == (direction, from_, to)
    assert p.unique_id == "1705311000.42"


def test_3cx_names() -> None:
    out = prefill_from_filename("[Jane Doe]_104-+4930123456789_20240301141516(1234).wav", [])
    assert (out.pattern, out.start, out.direction) == ("3cx", "2024-03-01T14:15:16", "outbound")
    assert (out.from_number, out.to_number, out.caller_name, out.unique_id) == (
        "104", "+4930123456789", "Jane Doe", "1234")
    inbound = prefill_from_filename("[+15551234567]_+15551234567-104_20240301141516(77).wav", [])
    assert inbound.direction == "inbound" and inbound.caller_name is None
    assert (inbound.from_number, inbound.to_number) == ("+15551234567", "104")


def test_numbers_use_the_default_region_from_the_settings() -> None:
    paths.settings_file().write_text(json.dumps({"calls.default_region": "GB"}))
    p = prefill_from_filename("out-02071234567-101-20240115-093000-1.1.wav", [])
    assert p.to_number == "+442071234567"


def test_patterns_from_the_settings_file_extend_and_override() -> None:
    custom = [{"name": "acme", "regex": r"^(?P<direction>IN|OUT)_(?P<from>\d+)_to_(?P<to>\d+)_(?P<timestamp>\d{12})",
               "timestamp_format": "%y%m%d%H%M%S"},
              {"name": "broken", "regex": "(unclosed"}]
    paths.settings_file().write_text(json.dumps({"calls.pbx_patterns": custom}))
    p = prefill_from_filename("OUT_101_to_5551234567_240115093000.flac")
    assert (p.pattern, p.direction, p.start) == ("acme", "outbound", "2024-01-15T09:30:00")
    assert (p.from_number, p.to_number) == ("101", "+15551234567")
    # built-ins still apply to other names
    assert prefill_from_filename("out-5551234567-101-20240115-093000-1.1.wav").pattern == "asterisk"


def test_extra_patterns_given_by_the_caller() -> None:
    extra = [{"name": "mine", "regex": r"call (?P<timestamp>\d{4}-\d{2}-\d{2} \d{2}\.\d{2}) from (?P<from>\d+)",
              "timestamp_format": "%Y-%m-%d %H.%M"}]
    p = prefill_from_filename("call 2024-05-06 07.08 from 4155550100.m4a", extra)
    assert (p.pattern, p.start, p.from_number, p.direction) == ("mine", "2024-05-06T07:08:00", "+14155550100", None)


def test_names_that_match_nothing_and_bad_dates() -> None:
    p = prefill_from_filename("Recording 12.wav", [])
    assert p.pattern is None and p.start is None and p.from_number is None
    assert prefill_from_filename("out-555-101-20241399-093000-1.1.wav", []).pattern is None


def test_duration_comes_from_the_header(folder: Path, x: np.ndarray) -> None:
    path = gen.write_wav(folder / "out-5551234567-101-20240115-093000-1705311000.42.wav", x)
    p = prefill_from_filename(path, [])
    assert p.duration_s == pytest.approx(4.0) and p.pattern == "asterisk"
    assert json.loads(json.dumps(p.to_dict()))["duration_s"] == pytest.approx(4.0)
