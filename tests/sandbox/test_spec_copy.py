"""The trimmed OpenAPI copy: still what the script makes from HubSpot's files (when ../shared is
here), whole on its own (always), and the request checker built on it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from desktop_app import openapi as spec

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "hubspot-openapi"


def _trim_module() -> ModuleType:
    path = ROOT / "scripts" / "trim_openapi.py"
    module_spec = importlib.util.spec_from_file_location("trim_openapi", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["trim_openapi"] = module
    module_spec.loader.exec_module(module)
    return module


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _compare_with(shared: Path, capsys: pytest.CaptureFixture[str]) -> str:
    trim = _trim_module()
    if not shared.is_dir():
        # A fresh clone has no ../shared: say so, and check what can be checked without it.
        with capsys.disabled():
            print(f"\n[spec copy] {shared} is absent: checking the committed copy against the script's "
                  "operation list instead of regenerating it")
        for name, keep in trim.KEEP.items():
            doc = spec.document(name)
            for method, path in keep:
                assert method in doc["paths"].get(path, {}), f"{name}: {method.upper()} {path} missing from the copy"
        return "integrity"
    fresh = trim.build(shared)
    committed = {name: json.loads((spec.SPEC_DIR / name).read_text(encoding="utf-8")) for name in fresh}
    for name in fresh:
        assert committed[name] == fresh[name], f"{name} differs from a fresh trim: run scripts/trim_openapi.py"
    on_disk = {p.name for p in spec.SPEC_DIR.glob("*.json")}
    assert on_disk == set(fresh), f"stray or missing files in the copy: {on_disk ^ set(fresh)}"
    return "regenerated"


def test_copy_matches_a_fresh_trim_of_hubspots_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert _compare_with(SHARED, capsys) == ("regenerated" if SHARED.is_dir() else "integrity")


def test_without_the_shared_folder_the_copy_is_checked_on_its_own(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert _compare_with(tmp_path / "absent", capsys) == "integrity"


def test_source_names_the_repository_commit_and_every_file() -> None:
    src = spec.source()
    assert src["repository"] == "HubSpot/HubSpot-public-api-spec-collection"
    assert len(src["commit"]) == 40 and all(c in "0123456789abcdef" for c in src["commit"])
    for name, path in src["files"].items():
        assert (spec.SPEC_DIR / name).is_file(), name
        assert path.startswith("PublicApiSpecs/") and path.endswith(".json")


def test_every_ref_in_the_copy_resolves_and_no_prose_is_left() -> None:
    for name in spec.document_names():
        doc = spec.document(name)
        for ref in _refs(doc):
            node: Any = doc
            for part in ref[2:].split("/"):
                assert part in node, f"{name}: {ref} does not resolve"
                node = node[part]
        text = json.dumps(doc)
        assert '"summary"' not in text and '"example"' not in text, name


def test_trim_keeps_a_property_named_like_a_prose_keyword() -> None:
    trim = _trim_module()
    doc = {"paths": {"/x": {"post": {"summary": "s", "description": "d", "requestBody": {"content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}}}},
        "components": {"schemas": {"A": {"type": "object", "description": "prose", "example": {"x": 1},
                                         "properties": {"description": {"type": "string", "example": "e"},
                                                        "b": {"$ref": "#/components/schemas/B"}}},
                                   "B": {"type": "integer"}, "Unused": {"type": "string"}}}}
    out = trim.trim_document(doc, [("post", "/x")], "t.json")
    schema_a = out["components"]["schemas"]["A"]
    assert "description" in schema_a["properties"] and "example" not in schema_a["properties"]["description"]
    assert "description" not in schema_a and "example" not in schema_a
    assert set(out["components"]["schemas"]) == {"A", "B"}  # only what is reachable
    assert "summary" not in out["paths"]["/x"]["post"]


def test_the_operations_the_app_uses_are_found_by_concrete_path() -> None:
    cases = {
        ("POST", "/crm/v3/objects/calls/search"): "/crm/v3/objects/calls/search",
        ("GET", "/crm/v3/objects/calls/123"): "/crm/v3/objects/calls/{callId}",
        ("POST", "/crm/v3/extensions/calling/recordings/ready"): "/crm/v3/extensions/calling/recordings/ready",
        ("GET", "/crm/v4/associations/calls/contacts/labels"): "/crm/v4/associations/{fromObjectType}/"
                                                               "{toObjectType}/labels",
        ("PUT", "/crm/v4/objects/calls/1/associations/default/contacts/2"):
            "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}",
        ("GET", "/calling/v1/dispositions"): "/calling/v1/dispositions",
    }
    for (method, path), template in cases.items():
        found = spec.find_operation(method, path)
        assert found is not None, (method, path)
        assert found[0].path == template
    assert spec.find_operation("DELETE", "/crm/v3/objects/calls") is None
    assert spec.methods_for("/crm/v3/objects/calls") == ["GET", "POST"]


def test_check_request_finds_each_class_of_problem() -> None:
    ok = spec.check_request("POST", "/crm/v3/objects/calls", content_type="application/json",
                            body=json.dumps({"properties": {"hs_timestamp": "2024-01-01T00:00:00Z"},
                                             "associations": []}).encode())
    assert ok.ok, ok.problems
    codes = {
        "type": spec.check_request("POST", "/crm/v3/objects/calls", content_type="application/json",
                                   body=b'{"properties": {"hs_timestamp": 5}, "associations": []}'),
        "required": spec.check_request("POST", "/crm/v3/objects/calls", content_type="application/json",
                                       body=b'{"associations": []}'),
        "enum": spec.check_request("POST", "/crm/v3/objects/contacts/search", content_type="application/json",
                                   body=json.dumps({"filterGroups": [{"filters": [{"propertyName": "email",
                                                    "operator": "EQUALS", "value": "x"}]}], "after": "0",
                                                    "limit": 1, "properties": [], "sorts": []}).encode()),
        "json": spec.check_request("POST", "/crm/v3/objects/calls", content_type="application/json", body=b"{nope"),
        "media": spec.check_request("POST", "/crm/v3/objects/calls", content_type="text/plain", body=b"x"),
        "path": spec.check_request("GET", "/crm/v3/extensions/calling/notanumber/settings/recording"),
        "int32": spec.check_request("GET", "/crm/v3/extensions/calling/99999999999/settings/recording"),
        "query": spec.check_request("GET", "/crm/v3/owners?limit=many"),
    }
    expected = {"type": "INVALID_TYPE", "required": "REQUIRED", "enum": "INVALID_ENUM", "json": "INVALID_JSON",
                "media": "UNSUPPORTED_MEDIA_TYPE", "path": "INVALID_TYPE", "int32": "INVALID_FORMAT",
                "query": "INVALID_TYPE"}
    for case, check in codes.items():
        assert [p.code for p in check.problems] and check.problems[0].code == expected[case], (case, check.problems)
    assert codes["required"].problems[0].name == "properties"
    assert codes["enum"].problems[0].name == "filterGroups[0].filters[0].operator"


def test_fields_hubspot_does_not_enforce_are_optional_unless_checked_as_written() -> None:
    """The files mark ``associations`` and every search field required; HubSpot takes a create without
    associations and ``{}`` as a search (``spec.NOT_REQUIRED`` names the pages), and sorts as objects."""
    cases = [("/crm/v3/objects/calls", {"properties": {"hs_timestamp": "2024-01-01T00:00:00Z"}}),
             ("/crm/v3/objects/contacts", {"properties": {"email": "a@example.com"}}),
             ("/crm/v3/objects/calls/batch/create", {"inputs": [{"properties": {}}]}),
             ("/crm/v3/objects/contacts/search", {}),
             ("/crm/v3/objects/calls/search", {"sorts": [{"propertyName": "hs_timestamp", "direction": "DESCENDING"}]}),
             ("/crm/v3/objects/calls/batch/read", {"inputs": [{"id": "1"}]})]
    for path, body in cases:
        raw = json.dumps(body).encode()
        assert spec.check_request("POST", path, content_type="application/json", body=raw).ok, (path, body)
        assert not spec.check_request("POST", path, content_type="application/json", body=raw, as_written=True).ok
    for name, (fields, source) in spec.NOT_REQUIRED.items():
        assert fields and "hubspot.com" in source, name
    bad_sort = json.dumps({"sorts": [{"propertyName": "x", "direction": "SIDEWAYS"}]}).encode()
    assert not spec.check_request("POST", "/crm/v3/objects/calls/search", content_type="application/json",
                                  body=bad_sort).ok


def test_a_dated_object_path_is_found_in_the_file_of_its_object_type() -> None:
    """HubSpot's 2026-09 calls and contacts files share ``/crm/objects/2026-09/{objectType}``: a request is
    checked against the file that describes its object type (by name or by type id)."""
    cases = {
        ("POST", "/crm/objects/2026-09/calls"): "calls-2026-09.json",
        ("POST", "/crm/objects/2026-09/0-48/search"): "calls-2026-09.json",
        ("POST", "/crm/objects/2026-09/contacts/search"): "contacts-2026-09.json",
        ("GET", "/crm/objects/2026-09/0-1/42"): "contacts-2026-09.json",
        ("POST", "/crm/associations/2026-09/calls/contacts/batch/create"): "associations-2026-09.json",
        ("GET", "/crm/owners/2026-09"): "owners-2026-09.json",
    }
    for (method, path), source in cases.items():
        found = spec.find_operation(method, path)
        assert found is not None and found[0].source == source, (method, path, found and found[0].source)
