"""Phone numbers are parsed in one place: ``desktop_app/phones.py`` is the only module using ``phonenumbers``."""

from __future__ import annotations

import ast
from pathlib import Path

from desktop_app import phones

PACKAGE = Path(__file__).resolve().parent.parent / "desktop_app"


def modules_importing_phonenumbers() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "phonenumbers" or n.startswith("phonenumbers.") for n in names):
                found.append(str(path.relative_to(PACKAGE)))
                break
    return found


def test_only_the_phones_module_uses_phonenumbers() -> None:
    assert modules_importing_phonenumbers() == ["phones.py"]


def test_the_form_the_file_names_and_the_search_agree_on_a_number() -> None:
    e164, reason = phones.check("(617) 555-0142", "us")
    assert (e164, reason) == ("+16175550142", None)
    assert phones.from_pbx("0016175550142", "GB") == e164  # a PBX's 00 prefix
    assert phones.from_pbx("104") == "104" and phones.from_pbx("anonymous") is None  # an extension; no number
    assert phones.variants("617-555-0142", "US")[0] == e164
    assert phones.check("12", "US")[0] is None and phones.known_region("gb") and not phones.known_region("XX")
