"""The trimmed copy of HubSpot's OpenAPI descriptions (the JSON files beside this module; data only).

``scripts/trim_openapi.py`` makes them from HubSpot's published files (``SOURCE.json``). The checker
over them is ``desktop_app.openapi``, which the sandbox and the client's contract test import; its
names are re-exported here for code that reads the copy (``spec.document``, ``spec.SPEC_DIR``).
"""

from desktop_app.openapi import (
    ANSWERED_DIFFERENTLY,
    NOT_REQUIRED,
    SOURCE_FILE,
    SPEC_DIR,
    Operation,
    Problem,
    RequestCheck,
    check_request,
    document,
    document_names,
    find_operation,
    load_operations,
    methods_for,
    source,
    validate_response,
)

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
