"""The OpenAPI checker both the sandbox and the client's contract test use, over HubSpot's descriptions.

The descriptions are the trimmed copy in ``desktop_app/hubspot/spec/`` (data only), made by
``scripts/trim_openapi.py`` from HubSpot's published files (``SOURCE.json`` names the repository,
commit and path of each), plus ``supplement.json`` for the few endpoints those files lack. The sandbox
(to refuse requests HubSpot would refuse, and to check its own answers) and the client's contract test
(to check every request the client sends) both use ``check_request``; neither can drift from HubSpot's
descriptions by agreeing with the other. Neither the HubSpot client nor Qt is imported here.

Schemas are OpenAPI 3.0 schemas; they are checked with ``jsonschema`` (draft 4 semantics, which
OpenAPI 3.0 schemas follow) after turning ``nullable: true`` into a ``null`` type.
"""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

SPEC_DIR = Path(__file__).resolve().parent.parent / "hubspot" / "spec"  # the trimmed copy (data)
SOURCE_FILE = SPEC_DIR / "SOURCE.json"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def source() -> dict[str, Any]:
    """Where the copy comes from: ``repository``, ``commit``, ``files`` (name → path there)."""
    value: dict[str, Any] = json.loads(SOURCE_FILE.read_text(encoding="utf-8"))
    return value


def document_names() -> list[str]:
    src = source()
    return sorted([*src["files"], "supplement.json"])


@functools.cache
def document(name: str) -> dict[str, Any]:
    """One trimmed OpenAPI document, by file name (e.g. ``calls-v3.json``)."""
    value: dict[str, Any] = json.loads((SPEC_DIR / name).read_text(encoding="utf-8"))
    return value


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 schema → JSON Schema: ``nullable: true`` adds the ``null`` type."""
    if isinstance(node, dict):
        out = {k: _openapi_to_jsonschema(v) for k, v in node.items()}
        if out.get("nullable") is True:
            kind = out.get("type")
            if isinstance(kind, str):
                out["type"] = [kind, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(node, list):
        return [_openapi_to_jsonschema(v) for v in node]
    return node


FORMAT_CHECKER = jsonschema.FormatChecker()


def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**31) <= value <= 2**31 - 1


def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value <= 2**63 - 1


FORMAT_CHECKER.checks("int32")(_is_int32)
FORMAT_CHECKER.checks("int64")(_is_int64)


# Where HubSpot accepts more than its descriptions say: fields the files list as ``required`` that
# HubSpot does not demand, by schema name, each with the page that shows it. The sandbox checks
# requests as HubSpot enforces them; the client's contract test checks them as written
# (``as_written=True``), so the client keeps sending what the description asks for.
NOT_REQUIRED: dict[str, tuple[tuple[str, ...], str]] = {
    "SimplePublicObjectInputForCreate": (
        ("associations",), "developers.hubspot.com/docs/api/crm/calls: 'You can also add an associations "
                           "object'; the recordings guide's step 3 body has none"),
    "SimplePublicObjectBatchInputForCreate": (
        ("associations",), "developers.hubspot.com/docs/api/crm/calls (batch create: associations optional)"),
    "PublicObjectSearchRequest": (
        ("after", "filterGroups", "limit", "properties", "sorts"),
        "developers.hubspot.com/docs-beta/crm/search: '{}' is the basic search; every field is optional"),
    "BatchReadInputSimplePublicObjectId": (
        ("propertiesWithHistory", "properties"),
        "developers.hubspot.com/docs/api/crm/calls (batch read example: inputs and properties only)"),
}
# ``sorts`` items: the files say strings ("-createdate"); HubSpot's search guide writes them as
# objects {"propertyName", "direction"}, and HubSpot takes both.
SORT_ITEM = {"anyOf": [
    {"type": "string"},
    {"type": "object", "required": ["propertyName"], "properties": {
        "propertyName": {"type": "string"}, "direction": {"type": "string", "enum": ["ASCENDING", "DESCENDING"]}}},
]}


# Where HubSpot's answers differ from its descriptions, by schema and property, each with its source.
# Answers are checked with these allowed (``validate_response``), so that the sandbox may answer as
# HubSpot does.
ANSWERED_DIFFERENTLY: dict[tuple[str, str], str] = {
    ("SimplePublicObject", "properties"):
        "an unset property that is returned (a default one, or one asked for) is null, e.g. "
        "'\"hs_call_body\": null' in developers.hubspot.com/docs/api/crm/calls and '\"firstname\": null' in "
        "the contacts guide; the files say string",
    ("SimplePublicObjectWithAssociations", "properties"): "as for SimplePublicObject",
    ("AssociationSpecWithLabel", "label"):
        "an unlabelled association type has '\"label\": null' (developers.hubspot.com/docs/api/crm/associations, "
        "v4 examples); the files say string",
}


def _as_answered(components: dict[str, Any]) -> dict[str, Any]:
    schemas = dict(components.get("schemas", {}))
    for (name, prop), _source in ANSWERED_DIFFERENTLY.items():
        node = schemas.get(name, {}).get("properties", {}).get(prop)
        if node is None:
            continue
        values = node.get("additionalProperties")
        if isinstance(values, dict):  # a map: its values may be null (the dated files already say so)
            if isinstance(values.get("type"), str):
                node = {**node, "additionalProperties": {**values, "type": [values["type"], "null"]}}
        elif isinstance(node.get("type"), str):
            node = {**node, "type": [node["type"], "null"]}
        schemas[name] = {**schemas[name], "properties": {**schemas[name]["properties"], prop: node}}
    return {**components, "schemas": schemas}


def _as_enforced(components: dict[str, Any]) -> dict[str, Any]:
    schemas = components.get("schemas", {})
    changed = dict(schemas)
    for name, (fields, _source) in NOT_REQUIRED.items():
        if name in schemas and "required" in schemas[name]:
            left = [f for f in schemas[name]["required"] if f not in fields]
            changed[name] = {k: v for k, v in schemas[name].items() if k != "required"}
            if left:
                changed[name]["required"] = left
    search = changed.get("PublicObjectSearchRequest")
    if search is not None and "sorts" in search.get("properties", {}):
        changed["PublicObjectSearchRequest"] = {**search, "properties": {
            **search["properties"], "sorts": {"type": "array", "items": SORT_ITEM}}}
    return {**components, "schemas": changed}


@functools.cache
def _components(name: str, view: str = "written") -> Any:
    """The components of a document: as ``written``, as HubSpot ``enforced`` them on requests, or as
    HubSpot ``answered`` (responses)."""
    components = _openapi_to_jsonschema(document(name).get("components", {}))
    return {"written": components, "enforced": _as_enforced(components), "answered": _as_answered(components)}[view]


@dataclass(frozen=True)
class Problem:
    """One reason a request does not match the description (HubSpot's ``ErrorDetail`` fields)."""

    where: str  # "path", "query", "header", "body"
    name: str  # parameter name, or a JSON path into the body ("properties.hs_timestamp")
    message: str
    code: str  # e.g. REQUIRED, INVALID_TYPE, INVALID_ENUM, INVALID_JSON, UNSUPPORTED_MEDIA_TYPE

    def as_error_detail(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code, "in": self.name or self.where,
                "context": {"location": [self.where]}}


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # the template, e.g. /crm/v3/objects/calls/{callId}
    operation_id: str
    source: str  # file name of the document
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    parameters: tuple[Mapping[str, Any], ...] = field(repr=False, compare=False, default=())

    @property
    def security(self) -> list[dict[str, list[str]]] | None:
        """Alternatives (any one suffices) of {scheme: scopes}; None when the operation needs no auth."""
        sec = self.raw.get("security", document(self.source).get("security"))
        if sec is None:
            return None
        return [dict(req) for req in sec]

    @property
    def scopes(self) -> list[str]:
        """Every OAuth scope that, alone, satisfies this operation."""
        out: list[str] = []
        for req in self.security or []:
            out.extend(req.get("oauth2", []))
        return out

    @property
    def rate_limit_exemptions(self) -> list[str]:
        return list(self.raw.get("x-hubspot-rate-limit-exemptions", []))

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        pattern = ""
        for part in re.split(r"(\{[^}]+\})", self.path):
            if part.startswith("{") and part.endswith("}"):
                pattern += f"(?P<{part[1:-1]}>[^/]+)"
            else:
                pattern += re.escape(part)
        return re.compile(pattern + r"/?\Z")

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.match(path)
        if not m:
            return None
        return {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}

    def schema(self, node: Mapping[str, Any], *, view: str = "written") -> dict[str, Any]:
        """A self-contained JSON Schema for ``node`` (its ``#/components/...`` refs still resolve), with the
        components as written, or as HubSpot ``enforced`` (``NOT_REQUIRED``) or ``answered`` them."""
        return {"allOf": [_openapi_to_jsonschema(dict(node))], "components": _components(self.source, view)}

    def request_body(self) -> tuple[bool, dict[str, Mapping[str, Any]]]:
        """(required, {media type: OpenAPI schema}) of the request body; ({}, False) when there is none."""
        body = self.raw.get("requestBody")
        if not body:
            return False, {}
        if "$ref" in body:
            body = _deref(document(self.source), body["$ref"])
        content = body.get("content", {})
        return bool(body.get("required", False)), {mt: c.get("schema", {}) for mt, c in content.items()}

    def response_schema(self, status: int, *, view: str = "written") -> dict[str, Any] | None:
        """The JSON Schema of a response with that status (or ``default``), if the description has one."""
        responses = self.raw.get("responses", {})
        resp = responses.get(str(status)) or responses.get("default")
        if not resp:
            return None
        if "$ref" in resp:
            resp = _deref(document(self.source), resp["$ref"])
        for media, content in resp.get("content", {}).items():
            if "json" in media or media == "*/*":
                if "schema" in content:
                    return self.schema(content["schema"], view=view)
        return None


def _deref(doc: Mapping[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


@functools.lru_cache(maxsize=1)
def load_operations() -> tuple[Operation, ...]:
    """Every operation of the trimmed copy (templates with fewer parameters sort first)."""
    ops: list[Operation] = []
    for name in document_names():
        doc = document(name)
        for path, item in doc.get("paths", {}).items():
            shared = list(item.get("parameters", []))
            for method in _METHODS:
                op = item.get(method)
                if not op:
                    continue
                params = {(p["in"], p["name"]): p for p in shared}
                for p in op.get("parameters", []):
                    if "$ref" in p:
                        p = _deref(doc, p["$ref"])
                    params[(p["in"], p["name"])] = p
                ops.append(Operation(method.upper(), path, op.get("operationId", f"{method} {path}"), name,
                                     op, tuple(params.values())))
    # Literal segments win over parameters: /calls/search before /calls/{callId}.
    ops.sort(key=lambda o: (o.path.count("{"), -len(o.path)))
    return tuple(ops)


def _object_types(op: Operation) -> list[str]:
    """The object types a dated CRM objects file describes (``info.x-callrelay-object-types``; empty: any)."""
    return list(document(op.source).get("info", {}).get("x-callrelay-object-types", []))


def find_operation(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    """The operation a concrete request path (no query) and method map to, and its path parameters.

    HubSpot's dated files for calls and contacts share one template (``/crm/objects/2026-09/{objectType}``):
    a path is matched to the file that describes its object type, else to the first that matches."""
    method = method.upper()
    fallback: tuple[Operation, dict[str, str]] | None = None
    for op in load_operations():
        if op.method != method:
            continue
        params = op.match(path)
        if params is None:
            continue
        kinds = _object_types(op)
        if not kinds or params.get("objectType", "").lower() in kinds:
            return op, params
        fallback = fallback or (op, params)
    return fallback


def methods_for(path: str) -> list[str]:
    """Methods the description allows on a concrete path (empty: the path is unknown)."""
    return sorted({op.method for op in load_operations() if op.match(path) is not None})


def _coerce(raw: str, schema: Mapping[str, Any]) -> Any:
    """A query/path string converted to the type its schema declares (unchanged when it cannot be)."""
    kind = schema.get("type")
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw.lower(), raw)
    return raw


def _json_path(path: Iterator[Any] | Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _schema_problems(op: Operation, schema: Mapping[str, Any], value: Any, where: str, name: str,
                     as_written: bool) -> list[Problem]:
    validator = jsonschema.Draft4Validator(op.schema(schema, view="written" if as_written else "enforced"),
                                           format_checker=FORMAT_CHECKER)
    problems = []
    for err in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        leaves = [err]
        if err.validator in ("allOf", "oneOf", "anyOf") and err.context:
            best = jsonschema.exceptions.best_match(err.context)
            leaves = [best] if best is not None else leaves
        for leaf in leaves:
            code = {"required": "REQUIRED", "type": "INVALID_TYPE", "enum": "INVALID_ENUM",
                    "format": "INVALID_FORMAT"}.get(str(leaf.validator), "INVALID_VALUE")
            jpath = _json_path(leaf.absolute_path)
            missing = re.match(r"'(.+)' is a required property", leaf.message)
            if leaf.validator == "required" and missing:
                jpath = f"{jpath}.{missing.group(1)}" if jpath else missing.group(1)
            label = f"{name}.{jpath}" if name and jpath else (name or jpath)
            problems.append(Problem(where, label, f"{label or where}: {leaf.message}", code))
    return problems


@dataclass
class RequestCheck:
    """What ``check_request`` found: the operation (None: unknown path or method), its parameters, problems."""

    operation: Operation | None
    path_params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    problems: list[Problem] = field(default_factory=list)
    allowed_methods: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.operation is not None and not self.problems


def check_request(method: str, url_path: str, query: Mapping[str, list[str]] | str = "",
                  content_type: str | None = None, body: bytes | None = None, *,
                  as_written: bool = False) -> RequestCheck:
    """Check one request against the description: path, method, parameters (required, type, enum),
    body media type, body JSON, required fields, types and enums. Auth is the caller's business
    (``Operation.security`` says what the operation accepts).

    By default the fields HubSpot does not enforce (``NOT_REQUIRED``, ``SORT_ITEM``) are optional, as
    on HubSpot; ``as_written=True`` checks against the description exactly as published.

    ``url_path`` may carry a query string; ``query`` is either a query string or parse_qs output.
    """
    parsed = urllib.parse.urlsplit(url_path)
    path = parsed.path
    q: dict[str, list[str]] = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    extra = urllib.parse.parse_qs(query, keep_blank_values=True) if isinstance(query, str) else query
    for k, v in extra.items():
        q.setdefault(k, []).extend(v)
    found = find_operation(method, path)
    if found is None:
        return RequestCheck(None, allowed_methods=methods_for(path))
    op, raw_params = found
    check = RequestCheck(op)
    _check_parameters(check, op, raw_params, q, as_written)
    _check_body(check, op, content_type, body, as_written)
    return check


def _check_parameters(check: RequestCheck, op: Operation, raw_params: Mapping[str, str],
                      q: Mapping[str, list[str]], as_written: bool) -> None:
    """The path and query parameters, coerced to their schema's type and checked against it."""
    for p in op.parameters:
        where, name, schema = p["in"], p["name"], p.get("schema", {})
        if where == "path":
            value: Any = _coerce(raw_params.get(name, ""), schema)
            check.path_params[name] = value
            check.problems += _schema_problems(op, schema, value, "path", name, as_written)
        elif where == "query":
            if name not in q:
                if p.get("required"):
                    check.problems.append(Problem("query", name, f"{name}: required query parameter is missing",
                                                  "REQUIRED"))
                continue
            value = _query_value(p, schema, q[name])
            check.query[name] = value
            check.problems += _schema_problems(op, schema, value, "query", name, as_written)


def _query_value(p: Mapping[str, Any], schema: Mapping[str, Any], values: list[str]) -> Any:
    """A query parameter's value: an array from every occurrence (or comma-separated when not exploded),
    else its last occurrence."""
    if schema.get("type") == "array":
        items = schema.get("items", {})
        parts = [x for v in values for x in (v.split(",") if not p.get("explode", True) else [v])]
        return [_coerce(x, items) for x in parts]
    return _coerce(values[-1], schema)


def _check_body(check: RequestCheck, op: Operation, content_type: str | None, body: bytes | None,
                as_written: bool) -> None:
    """The request body: there when required, of an accepted media type, and (JSON or a form) valid."""
    required, media = op.request_body()
    if not media:
        return
    if not body:
        if required:
            check.problems.append(Problem("body", "", "The request body is required", "REQUIRED"))
        return
    mt = (content_type or "").split(";")[0].strip().lower()
    if mt not in media:
        check.problems.append(Problem("header", "Content-Type",
                                      f"Content-Type {mt or '(none)'!r} is not accepted; use "
                                      f"{', '.join(sorted(media))}", "UNSUPPORTED_MEDIA_TYPE"))
        return
    schema = media[mt]
    value: Any
    if "json" in mt:
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            check.problems.append(Problem("body", "", f"Invalid input JSON: {exc}", "INVALID_JSON"))
            return
    elif mt == "application/x-www-form-urlencoded":
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        props = schema.get("properties", {})
        value = {k: _coerce(v[-1], props.get(k, {})) for k, v in form.items()}
    else:
        value = body
    check.body = value
    check.problems += _schema_problems(op, schema, value, "body", "", as_written)


def validate_response(op: Operation, status: int, payload: Any, *, as_written: bool = False) -> list[str]:
    """Messages for each way a JSON response body departs from the described response schema (by
    default allowing where HubSpot's own answers differ from it: ``ANSWERED_DIFFERENTLY``)."""
    schema = op.response_schema(status, view="written" if as_written else "answered")
    if schema is None:
        return []
    validator = jsonschema.Draft4Validator(schema, format_checker=FORMAT_CHECKER)
    return [f"{_json_path(e.absolute_path) or '(root)'}: {e.message}" for e in validator.iter_errors(payload)]


__all__ = [
    "ANSWERED_DIFFERENTLY",
    "NOT_REQUIRED",
    "SOURCE_FILE",
    "SPEC_DIR",
    "Operation",
    "Problem",
    "RequestCheck",
    "check_request",
    "document",
    "document_names",
    "find_operation",
    "load_operations",
    "methods_for",
    "source",
    "validate_response",
]
