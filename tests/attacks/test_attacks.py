"""A bounded replay of each attack class: every class at 0 failures."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.attacks.replay import CLASSES

# a small share of each class's count keeps `make test` quick; replay.py runs the full counts
SMALL = {"crafted_requests": 300, "connection_floods": 1, "damaged_recordings": 40, "corrupted_datadirs": 20}


@pytest.mark.slow
@pytest.mark.parametrize("module", [name for name, _ in CLASSES], ids=lambda m: m.rsplit(".", 1)[1])
def test_attack_class_has_no_failure(module: str, tmp_path: Path) -> None:
    attack = importlib.import_module(module).attack
    result = attack(SMALL[module.rsplit(".", 1)[1]], tmp_path)
    print(result.line())
    assert result.tries > 0
    assert not result.failures, "\n".join(result.failures[:20])
