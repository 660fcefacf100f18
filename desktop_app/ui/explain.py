"""Plain explanations of failures for the agent (no Qt: pure functions, tested directly)."""

from __future__ import annotations


def explain(status: int | None, message: str | None = None) -> str:
    """A sentence saying what a failed step means and what to do, from HubSpot's HTTP status."""
    text = (message or "").lower()
    if status is None:
        if "no longer there" in text or "could not be kept" in text:
            return "The recording file is missing or unreadable: put it back (or pick it again) and retry."
        return ("HubSpot could not be reached (no network, or the recording server or tunnel is down). "
                "Check the status bar, then retry.")
    if status == 401:
        return "HubSpot did not accept the app's sign-in (token expired or revoked). Sign in again in Settings."
    if status == 403:
        return ("The HubSpot token lacks a permission (scope) this step needs. Add the missing scope to the app "
                "in HubSpot, then retry.")
    if status == 404:
        return "HubSpot does not know something the call refers to (a contact, owner or app id). Check them."
    if status in (400, 409, 422):
        return "HubSpot rejected a value in the call details. Correct the field it names, then retry."
    if status == 429:
        return "HubSpot's rate limit was reached. The app waits and tries again; Retry to try now."
    if status >= 500:
        return "HubSpot had a problem on its side. It usually passes: retry in a minute."
    return "HubSpot refused the request. Its message above says why."
