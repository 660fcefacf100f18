#!/usr/bin/env python3
"""Reduce HubSpot's published OpenAPI descriptions to the operations Call Relay uses.

Reads ``../shared/hubspot-openapi/*.json`` (copied unchanged from
``HubSpot/HubSpot-public-api-spec-collection``), keeps only the operations listed in ``KEEP``,
the components their ``$ref``s reach (transitively), their security, parameters and schemas, and
drops prose (descriptions, summaries, examples, tags, documentation-only ``x-hubspot-*`` keys).
Each source file becomes one JSON file in ``desktop_app/hubspot/spec/`` under the same name;
``SOURCE.json`` records the source repository, commit and path of each file.

A few endpoints the app calls are not in those files (association labels live in HubSpot's
separate "associations schema" description, call dispositions in a legacy v1 API, and the OAuth
authorize page is a web page on app.hubspot.com). ``supplement.json`` describes them from
HubSpot's documentation pages, named in its ``info.x-callrelay-source``; it is written by this
script too, so the whole folder is reproducible.

Usage: ``python scripts/trim_openapi.py [--shared DIR] [--out DIR] [--check]``.
``--check`` writes nothing and exits 1 when the committed copy differs from a fresh trim.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = ROOT.parent / "shared" / "hubspot-openapi"
DEFAULT_OUT = ROOT / "desktop_app" / "hubspot" / "spec"

SOURCE_REPOSITORY = "HubSpot/HubSpot-public-api-spec-collection"
SOURCE_COMMIT = "99893791383254f52aa07662baeb98aad65cc710"
SOURCE_PATHS = {
    "calling-extensions-v3.json": "PublicApiSpecs/CRM/Calling Extensions/Rollouts/145891/v3/callingExtensions.json",
    "calling-extensions-2026-03.json":
        "PublicApiSpecs/CRM/Calling Extensions/Rollouts/145891/2026-03/callingExtensions.json",
    "calls-v3.json": "PublicApiSpecs/CRM/Calls/Rollouts/424/v3/calls.json",
    "contacts-v3.json": "PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json",
    "associations-v4.json": "PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json",
    "owners-v3.json": "PublicApiSpecs/CRM/Crm Owners/Rollouts/146888/v3/crmOwners.json",
    "transcriptions-v3.json": "PublicApiSpecs/CRM/Transcriptions/Rollouts/178922/v3/transcriptions.json",
    "oauth-v1.json": "PublicApiSpecs/Auth/Oauth/Rollouts/155908/v1/oauth.json",
    "account-info-v3.json": "PublicApiSpecs/Account/Account Info/Rollouts/144923/v3/accountInfo.json",
    "calls-2026-09.json": "PublicApiSpecs/CRM/Calls/Rollouts/424/2026-09/calls.json",
    "contacts-2026-09.json": "PublicApiSpecs/CRM/Contacts/Rollouts/424/2026-09/contacts.json",
    "associations-2026-09.json": "PublicApiSpecs/CRM/Associations/Rollouts/130902/2026-09/associations.json",
    "owners-2026-09.json": "PublicApiSpecs/CRM/Crm Owners/Rollouts/146888/2026-09/crmOwners.json",
    "calling-extensions-2026-09.json":
        "PublicApiSpecs/CRM/Calling Extensions/Rollouts/145891/2026-09/callingExtensions.json",
    "transcriptions-2026-09.json": "PublicApiSpecs/CRM/Transcriptions/Rollouts/178922/2026-09/transcriptions.json",
}

_SETTINGS_V3 = "/crm/v3/extensions/calling/{appId}/settings/recording"
_CALLING_V3 = "/crm/v3/extensions/calling/{appId}/settings"
_SETTINGS_2026 = "/crm/extensions/calling/2026-03/{appId}/settings/recording"
_OBJECTS_2026_09 = "/crm/objects/2026-09/{objectType}"
_ASSOC_2026_09 = "/crm/associations/2026-09/{fromObjectType}/{toObjectType}"
_CALLING_2026_09 = "/crm/extensions/calling/2026-09"
_OBJECT_2026_09 = [
    ("get", _OBJECTS_2026_09), ("post", _OBJECTS_2026_09),
    ("post", f"{_OBJECTS_2026_09}/batch/create"), ("post", f"{_OBJECTS_2026_09}/batch/read"),
    ("post", f"{_OBJECTS_2026_09}/search"),
    ("get", f"{_OBJECTS_2026_09}/{{objectId}}"), ("patch", f"{_OBJECTS_2026_09}/{{objectId}}"),
    ("delete", f"{_OBJECTS_2026_09}/{{objectId}}"),
]
# The dated CRM object files share one path template (``{objectType}``); HubSpot's README says which
# object types each describes ("calls are objectType calls or 0-48"; contacts are 0-1). The trimmed
# copy records them as ``info.x-callrelay-object-types`` so a request is checked against its own file.
OBJECT_TYPES = {
    "calls-2026-09.json": ["calls", "0-48"],
    "contacts-2026-09.json": ["contacts", "0-1"],
}
# (file, method, path) of every operation the app (client and sandbox) uses.
KEEP: dict[str, list[tuple[str, str]]] = {
    "calling-extensions-v3.json": [
        ("get", _SETTINGS_V3), ("post", _SETTINGS_V3), ("patch", _SETTINGS_V3),
        ("get", _CALLING_V3), ("post", _CALLING_V3), ("patch", _CALLING_V3), ("delete", _CALLING_V3),
        ("post", "/crm/v3/extensions/calling/recordings/ready"),
    ],
    "calling-extensions-2026-03.json": [
        ("get", _SETTINGS_2026), ("post", _SETTINGS_2026), ("patch", _SETTINGS_2026),
        ("post", "/crm/extensions/calling/2026-03/recordings/ready"),
    ],
    "calls-v3.json": [
        ("get", "/crm/v3/objects/calls"),
        ("post", "/crm/v3/objects/calls"),
        ("post", "/crm/v3/objects/calls/batch/create"),
        ("post", "/crm/v3/objects/calls/batch/read"),
        ("post", "/crm/v3/objects/calls/search"),
        ("get", "/crm/v3/objects/calls/{callId}"),
        ("patch", "/crm/v3/objects/calls/{callId}"),
        ("delete", "/crm/v3/objects/calls/{callId}"),
    ],
    "contacts-v3.json": [
        ("get", "/crm/v3/objects/contacts"),
        ("post", "/crm/v3/objects/contacts"),
        ("post", "/crm/v3/objects/contacts/search"),
        ("get", "/crm/v3/objects/contacts/{contactId}"),
        ("patch", "/crm/v3/objects/contacts/{contactId}"),
        ("delete", "/crm/v3/objects/contacts/{contactId}"),
    ],
    "associations-v4.json": [
        ("put", "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}"),
        ("put", "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}"),
        ("get", "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}"),
        ("delete", "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}"),
        ("post", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/create"),
        ("post", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read"),
        ("post", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/associate/default"),
    ],
    "owners-v3.json": [
        ("get", "/crm/v3/owners"),
        ("get", "/crm/v3/owners/{ownerId}"),
    ],
    "transcriptions-v3.json": [
        ("post", "/crm/v3/extensions/calling/transcripts"),
        ("get", "/crm/v3/extensions/calling/transcripts/{transcriptId}"),
        ("delete", "/crm/v3/extensions/calling/transcripts/{transcriptId}"),
    ],
    "oauth-v1.json": [
        ("post", "/oauth/v1/token"),
        ("get", "/oauth/v1/access-tokens/{token}"),
        ("get", "/oauth/v1/refresh-tokens/{token}"),
    ],
    "account-info-v3.json": [
        ("get", "/account-info/v3/details"),
    ],
    # HubSpot's newest date-versioned API (``hubspot.api_version = 2026-09``): the same operations.
    "calls-2026-09.json": _OBJECT_2026_09,
    "contacts-2026-09.json": _OBJECT_2026_09,
    "associations-2026-09.json": [
        ("put", "/crm/objects/2026-09/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/"
                "{toObjectId}"),
        ("put", "/crm/objects/2026-09/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}"),
        ("delete", "/crm/objects/2026-09/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}"),
        ("post", f"{_ASSOC_2026_09}/batch/create"),
        ("post", f"{_ASSOC_2026_09}/batch/read"),
        ("post", f"{_ASSOC_2026_09}/batch/associate/default"),
    ],
    "owners-2026-09.json": [
        ("get", "/crm/owners/2026-09"),
        ("get", "/crm/owners/2026-09/{ownerId}"),
    ],
    "calling-extensions-2026-09.json": [
        ("get", f"{_CALLING_2026_09}/{{appId}}/settings/recording"),
        ("post", f"{_CALLING_2026_09}/{{appId}}/settings/recording"),
        ("patch", f"{_CALLING_2026_09}/{{appId}}/settings/recording"),
        ("get", f"{_CALLING_2026_09}/{{appId}}/settings"),
        ("post", f"{_CALLING_2026_09}/{{appId}}/settings"),
        ("patch", f"{_CALLING_2026_09}/{{appId}}/settings"),
        ("delete", f"{_CALLING_2026_09}/{{appId}}/settings"),
        ("post", f"{_CALLING_2026_09}/recordings/ready"),
    ],
    "transcriptions-2026-09.json": [
        ("post", f"{_CALLING_2026_09}/transcripts"),
        ("get", f"{_CALLING_2026_09}/transcripts/{{transcriptId}}"),
        ("delete", f"{_CALLING_2026_09}/transcripts/{{transcriptId}}"),
    ],
}

# Keys that are prose or documentation only (dropped wherever they are OpenAPI/JSON-Schema keywords).
PROSE = {"description", "summary", "example", "examples", "tags", "externalDocs", "title", "termsOfService",
         "contact", "license"}
# Vendor extensions kept: they change behaviour (search is exempt from the ten-second limit).
KEEP_EXTENSIONS = {"x-hubspot-rate-limit-exemptions"}
# Maps whose keys are names chosen by the author (property names, status codes, media types...),
# not keywords: a property called "description" must survive.
NAME_MAPS = {"properties", "patternProperties", "paths", "schemas", "responses", "content", "headers",
             "securitySchemes", "scopes", "mapping", "variables", "encoding",
             "requestBodies", "definitions", "$defs"}


def strip_prose(node: Any, *, names: bool = False) -> Any:
    """A copy of ``node`` without prose keys. ``names``: node's keys are names, not keywords."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not names:
                if key in PROSE:
                    continue
                if key.startswith("x-") and key not in KEEP_EXTENSIONS:
                    continue
            out[key] = strip_prose(value, names=(not names and key in NAME_MAPS))
        return out
    if isinstance(node, list):
        return [strip_prose(item) for item in node]
    return node


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def _resolve_pointer(doc: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, got {ref!r}")
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def trim_document(doc: dict[str, Any], keep: list[tuple[str, str]], name: str) -> dict[str, Any]:
    """The parts of one OpenAPI document that ``keep`` needs, prose removed."""
    paths: dict[str, Any] = {}
    for method, path in keep:
        try:
            op = doc["paths"][path][method]
        except KeyError:
            raise KeyError(f"{name}: {method.upper()} {path} is not in the source") from None
        item = paths.setdefault(path, {})
        shared_params = doc["paths"][path].get("parameters")
        if shared_params is not None:
            item["parameters"] = copy.deepcopy(shared_params)
        item[method] = copy.deepcopy(op)
    # Components reachable from the kept operations, followed transitively.
    components: dict[str, dict[str, Any]] = {}
    pending = sorted(_refs(paths))
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        parts = ref[2:].split("/")
        if len(parts) != 3 or parts[0] != "components":
            raise ValueError(f"{name}: unexpected $ref {ref!r}")
        target = _resolve_pointer(doc, ref)
        components.setdefault(parts[1], {})[parts[2]] = copy.deepcopy(target)
        pending.extend(sorted(_refs(target) - seen))
    schemes = doc.get("components", {}).get("securitySchemes")
    if schemes:
        components["securitySchemes"] = copy.deepcopy(schemes)
    out: dict[str, Any] = {
        "openapi": doc.get("openapi", "3.0.1"),
        "info": {"title": doc.get("info", {}).get("title", name), "version": doc.get("info", {}).get("version", "")},
        "servers": copy.deepcopy(doc.get("servers", [])),
        "paths": paths,
        "components": components,
    }
    if "security" in doc:
        out["security"] = copy.deepcopy(doc["security"])
    trimmed: dict[str, Any] = strip_prose(out)
    if name in OBJECT_TYPES:
        trimmed["info"]["x-callrelay-object-types"] = list(OBJECT_TYPES[name])
    return trimmed


def supplement() -> dict[str, Any]:
    """Endpoints the app uses that the shared descriptions do not contain (see module docstring)."""
    error_response = {"$ref": "#/components/responses/Error"}
    any_token = [{"oauth2": ["oauth"]}, {"private_apps": []}]
    return {
        "openapi": "3.0.1",
        "info": {
            "title": "Call Relay supplement",
            "version": "1",
            "x-callrelay-source": {
                "GET /crm/v4/associations/{fromObjectType}/{toObjectType}/labels":
                    "developers.hubspot.com/docs/api-reference/crm-associations-schema-v4 (Retrieve "
                    "association labels): results of AssociationSpecWithLabel",
                "GET /calling/v1/dispositions":
                    "developers.hubspot.com/docs/api-reference/legacy/crm/activities/engagements/"
                    "get-calling-v1-dispositions: a JSON array of {id, label}",
                "GET /oauth/authorize":
                    "HubSpot's authorize page (app.hubspot.com/oauth/authorize): query client_id, "
                    "redirect_uri, scope, optional state; answers with a redirect to redirect_uri?code=...",
            },
        },
        "servers": [{"url": "https://api.hubapi.com"}],
        "paths": {
            "/crm/v4/associations/{fromObjectType}/{toObjectType}/labels": {
                "get": {
                    "operationId": "get-/crm/v4/associations/{fromObjectType}/{toObjectType}/labels_getAll",
                    "parameters": [
                        {"name": "fromObjectType", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "toObjectType", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {
                            "$ref": "#/components/schemas/CollectionResponseAssociationSpecWithLabelNoPaging"}}}},
                        "default": error_response,
                    },
                    "security": [{"oauth2": ["crm.objects.contacts.read"]}, {"oauth2": ["crm.objects.calls.read"]},
                                 {"oauth2": ["oauth"]}],
                },
            },
            "/calling/v1/dispositions": {
                "get": {
                    "operationId": "get-/calling/v1/dispositions",
                    "parameters": [],
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {
                            "type": "array", "items": {"$ref": "#/components/schemas/CallDisposition"}}}}},
                        "default": error_response,
                    },
                    "security": any_token,
                },
            },
            "/oauth/authorize": {
                "get": {
                    "operationId": "get-/oauth/authorize",
                    "parameters": [
                        {"name": "client_id", "in": "query", "required": True, "schema": {"type": "string"}},
                        {"name": "redirect_uri", "in": "query", "required": True, "schema": {"type": "string"}},
                        {"name": "scope", "in": "query", "required": True, "schema": {"type": "string"}},
                        {"name": "optional_scope", "in": "query", "required": False, "schema": {"type": "string"}},
                        {"name": "state", "in": "query", "required": False, "schema": {"type": "string"}},
                    ],
                    "responses": {"302": {}, "default": error_response},
                    "security": [],
                },
            },
        },
        "components": {
            "schemas": {
                "AssociationSpecWithLabel": {
                    "required": ["category", "typeId"],
                    "type": "object",
                    "properties": {
                        "category": {"type": "string",
                                     "enum": ["HUBSPOT_DEFINED", "INTEGRATOR_DEFINED", "USER_DEFINED", "WORK"]},
                        "label": {"type": "string", "nullable": True},
                        "typeId": {"type": "integer", "format": "int32"},
                    },
                },
                "CollectionResponseAssociationSpecWithLabelNoPaging": {
                    "required": ["results"],
                    "type": "object",
                    "properties": {"results": {"type": "array", "items": {
                        "$ref": "#/components/schemas/AssociationSpecWithLabel"}}},
                },
                "CallDisposition": {
                    "required": ["id", "label"],
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "label": {"type": "string"}},
                },
                "Error": {
                    "required": ["category", "correlationId", "message"],
                    "type": "object",
                    "properties": {
                        "category": {"type": "string"},
                        "context": {"type": "object", "additionalProperties": {"type": "array",
                                                                                "items": {"type": "string"}}},
                        "correlationId": {"type": "string", "format": "uuid"},
                        "errors": {"type": "array", "items": {"type": "object"}},
                        "links": {"type": "object", "additionalProperties": {"type": "string"}},
                        "message": {"type": "string"},
                        "subCategory": {"type": "string"},
                    },
                },
            },
            "responses": {"Error": {"content": {"*/*": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "securitySchemes": {
                "oauth2": {"type": "oauth2", "flows": {"authorizationCode": {
                    "authorizationUrl": "https://app.hubspot.com/oauth/authorize",
                    "tokenUrl": "https://api.hubapi.com/oauth/v1/token",
                    "scopes": {"crm.objects.calls.read": "", "crm.objects.contacts.read": "", "oauth": ""}}}},
                "private_apps": {"type": "apiKey", "name": "private-app", "in": "header"},
            },
        },
    }


def build(shared: Path) -> dict[str, Any]:
    """Every file of the trimmed copy, by file name, as JSON values (nothing written)."""
    files: dict[str, Any] = {}
    for name, keep in KEEP.items():
        doc = json.loads((shared / name).read_text(encoding="utf-8"))
        files[name] = trim_document(doc, keep, name)
    files["supplement.json"] = supplement()
    files["SOURCE.json"] = {
        "repository": SOURCE_REPOSITORY,
        "commit": SOURCE_COMMIT,
        "files": {name: SOURCE_PATHS[name] for name in KEEP},
        "supplement.json": "written by scripts/trim_openapi.py from HubSpot's documentation pages "
                           "(see its info.x-callrelay-source)",
        "generator": "scripts/trim_openapi.py",
    }
    return files


def dump(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder of HubSpot's descriptions")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the trimmed copy")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when the copy differs")
    args = parser.parse_args(argv)
    if not args.shared.is_dir():
        print(f"trim_openapi: {args.shared} does not exist", file=sys.stderr)
        return 2
    files = build(args.shared)
    differ = []
    for name, value in files.items():
        target = args.out / name
        text = dump(value)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            differ.append(name)
            if not args.check:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    if args.check:
        for name in differ:
            print(f"trim_openapi: {name} differs from a fresh trim", file=sys.stderr)
        return 1 if differ else 0
    total = sum(len(dump(v)) for v in files.values())
    print(f"trim_openapi: wrote {len(files)} files ({total} bytes) to {args.out}; changed: {differ or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
