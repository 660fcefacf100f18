"""HubSpot-shaped error answers."""

from __future__ import annotations

import uuid
from typing import Any


class ApiError(Exception):
    """An answer in HubSpot's ``Error`` shape: ``status`` "error", ``message``, ``correlationId``,
    ``category``, optional ``subCategory``, ``errors`` (ErrorDetail), ``context`` and ``links``."""

    def __init__(self, status: int, category: str, message: str, *, errors: list[dict[str, Any]] | None = None,
                 context: dict[str, list[str]] | None = None, sub_category: str | None = None,
                 links: dict[str, str] | None = None, headers: list[tuple[str, str]] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.errors = errors
        self.context = context
        self.sub_category = sub_category
        self.links = links
        self.headers = headers or []
        self.extra = extra or {}

    def body(self, correlation_id: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id or str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category:
            out["subCategory"] = self.sub_category
        if self.errors:
            out["errors"] = self.errors
        if self.context:
            out["context"] = self.context
        if self.links:
            out["links"] = self.links
        out.update(self.extra)
        return out


def not_found(message: str) -> ApiError:
    return ApiError(404, "OBJECT_NOT_FOUND", message)


def validation(message: str, errors: list[dict[str, Any]] | None = None,
               context: dict[str, list[str]] | None = None) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, errors=errors, context=context)
