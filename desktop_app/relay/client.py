"""The desk's side of team mode: `RelayClient` talks to a relay's agents' API (requests), and `join`
redeems an invite (``callrelay join RELAY_URL CODE``): the token goes to this computer's keyring
(`keystore.TEAM_RELAY_TOKEN`), the relay's URL to the settings (``team.relay_url``).

An upload asks the relay for the part links (`POST /api/uploads`: the relay answers the parts it still
lacks, so a desk started again after a crash resumes where the store stopped), sends only those with
`storage.send_parts` (to the object store's presigned links; with a ``file:`` store, to the relay with
the token), then `complete`s with the call's details; the relay checks the SHA-256 before accepting.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from desktop_app.relay.storage import Part, StorageError, send_parts
from desktop_app.server.recordings import sha256_of


class RelayError(RuntimeError):
    """A problem reaching or using the relay, in one sentence; ``status`` the relay's HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def check_relay_url(url: str) -> str:
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"{url!r} is not a relay URL: write https://HOST[:PORT] as your admin gave it.")
    return url.strip().rstrip("/")


class RelayClient:
    def __init__(self, url: str, token: str | None = None, *, timeout_s: float = 30,
                 session: requests.Session | None = None) -> None:
        self.url = check_relay_url(url)
        self.token = token
        self.timeout_s = timeout_s
        self.http = session or requests.Session()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _request(self, method: str, path: str, data: dict[str, Any] | None = None,
                 params: Mapping[str, Any] | None = None) -> requests.Response:
        try:
            return self.http.request(method, self.url + path, json=data, params=params, headers=self._headers(),
                                     timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise RelayError(f"The relay at {self.url} cannot be reached ({type(exc).__name__}); check the "
                             "address and this computer's connection.") from None

    def _call(self, method: str, path: str, data: dict[str, Any] | None = None,
              params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        answer = self._request(method, path, data, params)
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code != 200 or not isinstance(body, dict):
            message = body.get("message") if isinstance(body, dict) else None
            raise RelayError(message or f"The relay at {self.url} answered HTTP {answer.status_code}.",
                             answer.status_code)
        return body

    def join(self, code: str) -> dict[str, Any]:
        """Redeem an invite: ``{token, name, role}``."""
        return self._call("POST", "/api/join", {"code": code.strip()})

    def submissions(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/submissions")["submissions"])

    def submission(self, external_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/submissions/{external_id}")

    def history(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """One page of the team's history (``GET /api/history``): ``{submissions, total}``."""
        return self._call("GET", "/api/history", params=params)

    def history_totals(self, by: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("GET", "/api/history/totals", params={**params, "by": by})

    def history_csv(self, params: Mapping[str, Any]) -> str:
        answer = self._request("GET", "/api/history.csv", params=params)
        if answer.status_code != 200:
            try:
                message = answer.json().get("message")
            except (ValueError, AttributeError):
                message = None
            raise RelayError(message or f"The relay at {self.url} answered HTTP {answer.status_code}.",
                             answer.status_code)
        answer.encoding = "utf-8"
        return answer.text

    def recording_link(self, external_id: str) -> str:
        return str(self._call("GET", f"/api/submissions/{external_id}/recording")["url"])

    def begin(self, path: str | os.PathLike[str], sha256: str | None = None, *,
              external_id: str | None = None) -> dict[str, Any]:
        """Start or resume the upload of ``path``; with ``external_id``, a recording the relay accepted
        under it already is answered as done (``submission``) and nothing is sent again."""
        data: dict[str, Any] = {"sha256": sha256 or sha256_of(path), "size": os.path.getsize(path),
                                "filename": Path(path).name}
        if external_id:
            data["external_id"] = external_id
        return self._call("POST", "/api/uploads", data)

    def upload(self, path: str | os.PathLike[str], call: dict[str, Any] | None = None, *,
               on_part: Callable[[int, int], None] | None = None,
               on_plan: Callable[[int, int], None] | None = None,
               part_session: requests.Session | None = None) -> dict[str, Any]:
        """Send ``path`` (only the parts the store lacks) and submit it with ``call``'s details;
        returns ``{external_id, status}``. ``on_plan(bytes_on_relay, bytes_to_send)`` once the relay
        said which parts it holds (a resumed upload: more than 0 on the relay); ``on_part(number, size)``
        after each part sent."""
        plan = self.begin(path, external_id=(call or {}).get("external_id"))
        if plan.get("submission"):
            if on_plan is not None:
                on_plan(int(plan.get("size") or 0), 0)
            return {"external_id": plan["submission"], "status": "queued"}
        urls = {int(p["number"]): str(p["url"]) for p in plan["parts"]}
        done = {int(p["number"]): Part(int(p["number"]), int(p["size"]), "") for p in plan["done"]}
        if on_plan is not None:
            on_plan(sum(p.size for p in done.values()), sum(int(p["size"]) for p in plan["parts"]))
        if plan.get("store") == "relay":  # the relay takes the parts itself, with this desk's token
            session = part_session or requests.Session()
            session.headers.update(self._headers())
        else:  # presigned links: the store's own signature, no token may go there
            session = part_session or requests.Session()
        try:
            sent = send_parts(path, int(plan["part_size"]), done, urls.__getitem__, session=session,
                              on_part=on_part)
        except StorageError as exc:
            raise RelayError(str(exc)) from None
        parts = [{"number": n, "etag": p.etag} for n, p in sorted(sent.items())]
        return self._call("POST", f"/api/uploads/{plan['upload_id']}/complete",
                          {"parts": parts, "call": call or {}})


def join(relay_url: str, code: str) -> dict[str, Any]:
    """Redeem ``code`` at the relay; keep the token in the keyring and the URL in the settings. The
    keyring is checked first, so an invite is never spent on a desk that could not keep its token."""
    from desktop_app import keystore, settings

    url = check_relay_url(relay_url)
    keystore.ensure_usable()
    conf = settings.load()
    answer = RelayClient(url).join(code)
    keystore.set(keystore.TEAM_RELAY_TOKEN, str(answer["token"]))
    conf.set("team.relay_url", url)
    conf.save()
    return {"url": url, "name": answer.get("name"), "role": answer.get("role")}
