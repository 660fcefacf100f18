"""The trimmed copy of HubSpot's OpenAPI descriptions (the JSON files beside this module; data only).

``scripts/trim_openapi.py`` makes them from HubSpot's published files (``SOURCE.json``). The checker
over them, and the functions that read them (``document``, ``SPEC_DIR``, ``find_operation``…), are
``desktop_app.openapi``, which the sandbox and the client's contract test import.
"""
