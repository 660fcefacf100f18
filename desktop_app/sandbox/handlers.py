"""The sandbox's operations, one handler each, keyed by the operation's alias (see ``faults.ALIASES``).

A handler gets the sandbox and the request's ``Context`` (the operation, its checked parameters
and body, who is calling) after authentication, rate limits and the check against HubSpot's
description have passed; it returns an ``Outcome`` or raises ``ApiError``.
"""

from __future__ import annotations

import secrets
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from desktop_app.sandbox import crm, transcripts
from desktop_app.sandbox.errors import ApiError, not_found, validation
from desktop_app.sandbox.operation import Context, Handler, Outcome
from desktop_app.sandbox.operation import SandboxParts as Sandbox
from desktop_app.sandbox.seeds import OWNER_SEEDS


def _object_kind_from(ctx: Context, name: str) -> str:
    kind = crm.object_type(str(ctx.path_params[name]))
    if kind is None:
        raise validation(f"Unknown object type {ctx.path_params[name]!r}")
    return kind


def _app_id(sb: Sandbox, ctx: Context) -> int:
    app_id = int(ctx.path_params["appId"])
    if app_id != sb.credentials.app_id:
        raise ApiError(404, "OBJECT_NOT_FOUND", f"App {app_id} does not exist or does not belong to this developer "
                       "account")
    return app_id


def _check_recording_url(url: str) -> None:
    if url.count("%s") != 1:
        raise validation("urlToRetrieveAuthedRecording must contain %s exactly once (replaced by the call's "
                         "external id)",
                         context={"urlToRetrieveAuthedRecording": [url]})
    parts = urllib.parse.urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise validation("urlToRetrieveAuthedRecording must be an https URL (the sandbox also takes http on loopback)",
                         context={"urlToRetrieveAuthedRecording": [url]})


def h_settings_get(sb: Sandbox, ctx: Context) -> Outcome:
    setting = sb.recording_setting(_app_id(sb, ctx))
    if setting is None:
        raise not_found(f"No recording settings for app {ctx.path_params['appId']}")
    return Outcome(200, setting)


def h_settings_create(sb: Sandbox, ctx: Context) -> Outcome:
    app_id = _app_id(sb, ctx)
    url = ctx.body["urlToRetrieveAuthedRecording"]
    _check_recording_url(url)
    with sb.store.lock:
        if sb.recording_setting(app_id) is not None:
            raise ApiError(409, "CONFLICT", f"Recording settings already exist for app {app_id}; use PATCH to change "
                           "them")
        sb.store.put("settings", str(app_id), {"urlToRetrieveAuthedRecording": url})
    return Outcome(200, {"urlToRetrieveAuthedRecording": url})


def h_settings_update(sb: Sandbox, ctx: Context) -> Outcome:
    app_id = _app_id(sb, ctx)
    with sb.store.lock:
        current = sb.recording_setting(app_id)
        if current is None:
            raise not_found(f"No recording settings for app {app_id}; create them with POST first")
        url = ctx.body.get("urlToRetrieveAuthedRecording")
        if url is not None:
            _check_recording_url(url)
            current["urlToRetrieveAuthedRecording"] = url
        sb.store.put("settings", str(app_id), current)
    return Outcome(200, current)


def h_recordings_ready(sb: Sandbox, ctx: Context) -> Outcome:
    call_id = str(ctx.body["engagementId"])
    if not sb.records.exists("calls", call_id):
        raise not_found(f"No call engagement with id {call_id}")
    with sb.store.lock:
        marks = sb.store.get("meta", "ready") or []
        sb.store.put("meta", "ready", [*marks, call_id])
    sb.fetches.start(call_id)
    return Outcome(204)


def h_calling_settings_get(sb: Sandbox, ctx: Context) -> Outcome:
    stored = sb.store.get("calling_settings", str(_app_id(sb, ctx)))
    if stored is None:
        raise not_found(f"No calling settings for app {ctx.path_params['appId']}")
    return Outcome(200, stored)


def h_calling_settings_create(sb: Sandbox, ctx: Context) -> Outcome:
    app_id = str(_app_id(sb, ctx))
    stamp = crm.now_iso()
    with sb.store.lock:
        if sb.store.get("calling_settings", app_id) is not None:
            raise ApiError(409, "CONFLICT", f"Calling settings already exist for app {app_id}; use PATCH to change "
                           "them")
        stored = {**ctx.body, "createdAt": stamp, "updatedAt": stamp}
        sb.store.put("calling_settings", app_id, stored)
    return Outcome(200, stored)


def h_calling_settings_update(sb: Sandbox, ctx: Context) -> Outcome:
    app_id = str(_app_id(sb, ctx))
    with sb.store.lock:
        stored = sb.store.get("calling_settings", app_id)
        if stored is None:
            raise not_found(f"No calling settings for app {app_id}; create them with POST first")
        stored = {**stored, **ctx.body, "updatedAt": crm.now_iso()}
        sb.store.put("calling_settings", app_id, stored)
    return Outcome(200, stored)


def h_calling_settings_delete(sb: Sandbox, ctx: Context) -> Outcome:
    sb.store.delete("calling_settings", str(_app_id(sb, ctx)))
    return Outcome(204)


def _wanted_props(ctx: Context) -> list[str]:
    value = ctx.query.get("properties") or []
    return [p for v in value for p in str(v).split(",") if p]


def h_object_create(kind: str) -> Handler:
    def handler(sb: Sandbox, ctx: Context) -> Outcome:
        obj = sb.records.create_with_associations(kind, ctx.body)
        return Outcome(201, crm.public_object(obj, list(ctx.body.get("properties", {}))))
    return handler


def h_calls_batch_create(sb: Sandbox, ctx: Context) -> Outcome:
    inputs = ctx.body["inputs"]
    if len(inputs) > 100:
        raise validation("A batch takes at most 100 inputs")
    started = crm.now_iso()
    owners = sb.records.owner_ids()
    for item in inputs:  # all or nothing, like HubSpot: check every input before creating any
        crm.check_properties("calls", item.get("properties", {}), creating=True, owners=owners,
                             portal_id=sb.credentials.portal_id)
        sb.records.check_create_associations("calls", item.get("associations") or [])
    results = [crm.public_object(sb.records.create_with_associations("calls", item), list(item.get("properties", {})))
               for item in inputs]
    return Outcome(201, {"status": "COMPLETE", "results": results, "startedAt": started,
                         "completedAt": crm.now_iso()})


def _find_by_id(sb: Sandbox, kind: str, oid: str, id_prop: str | None) -> dict[str, Any] | None:
    """An object by record id or, with ``id_prop``, by a unique-value property (HubSpot reads by those only:
    ``email`` of contacts; calls have none), for single and batch reads alike."""
    if not id_prop or id_prop == "hs_object_id":
        found: dict[str, Any] | None = sb.store.get(kind, oid)
        return found
    if id_prop not in crm.UNIQUE_PROPERTIES[kind]:
        raise validation(f"{id_prop} is not a unique-value property of {kind}, so it cannot be used as idProperty",
                         context={"idProperty": [str(id_prop)]})
    return next((o for o in sb.store.values(kind) if (o["properties"].get(id_prop) or "").lower() == oid.lower()),
                None)


def h_calls_batch_read(sb: Sandbox, ctx: Context) -> Outcome:
    started = crm.now_iso()
    wanted = list(ctx.body.get("properties") or [])
    id_prop = ctx.body.get("idProperty")
    results, errors = [], []
    for item in ctx.body["inputs"]:
        obj = _find_by_id(sb, "calls", str(item["id"]), id_prop)
        if obj is None:
            errors.append(str(item["id"]))
        else:
            results.append(crm.public_object(obj, wanted))
    problems = [_batch_error("OBJECT_NOT_FOUND", "Could not get some CALL objects, they may be deleted or not "
                             "exist.", {"ids": errors})] if errors else []
    return _batch_answer(200, started, results, problems)


def h_search(kind: str) -> Handler:
    def handler(sb: Sandbox, ctx: Context) -> Outcome:
        now = time.time()  # a record created through the API is not in the index before its searchable_at
        objects = [o for o in sb.store.values(kind) if o.get("searchable_at", 0.0) <= now]
        return Outcome(200, crm.search(objects, ctx.body))
    return handler


def _with_associations(sb: Sandbox, kind: str, obj: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """``SimplePublicObjectWithAssociations``: the object, plus its associations of the kinds asked for."""
    out = crm.public_object(obj, _wanted_props(ctx))
    assoc_kinds = [crm.object_type(a) for v in ctx.query.get("associations") or [] for a in str(v).split(",")]
    if assoc_kinds:
        out["associations"] = {}
        for to_kind in filter(None, assoc_kinds):
            links = [a for a in sb.store.values("associations") if a["fromType"] == kind and a["fromId"] == obj["id"]
                     and a["toType"] == to_kind]
            if links:
                out["associations"][to_kind] = {"results": [
                    {"id": a["toId"], "type": f"{kind[:-1]}_to_{to_kind[:-1]}"} for a in links]}
    return out


def h_object_get(kind: str, param: str) -> Handler:
    def handler(sb: Sandbox, ctx: Context) -> Outcome:
        oid = str(ctx.path_params[param])
        obj = _find_by_id(sb, kind, oid, ctx.query.get("idProperty"))
        if obj is None:
            raise not_found(f"Object not found. objectId are usually numeric. ({kind} {oid})")
        return Outcome(200, _with_associations(sb, kind, obj, ctx))
    return handler


def h_object_list(kind: str) -> Handler:
    """``GET /crm/v3/objects/{kind}``: a page of objects, oldest first (limit 10 by default, at most 100)."""
    def handler(sb: Sandbox, ctx: Context) -> Outcome:
        limit = int(ctx.query.get("limit", 10))
        if not 1 <= limit <= 100:
            raise validation(f"limit must be between 1 and 100, got {limit}")
        after = str(ctx.query.get("after") or "0")
        start = int(after) if after.isdigit() else 0
        objects = [] if ctx.query.get("archived") else sb.records.objects_stored(kind)
        page = objects[start:start + limit]
        out: dict[str, Any] = {"results": [_with_associations(sb, kind, o, ctx) for o in page]}
        if start + limit < len(objects):
            nxt = str(start + limit)
            out["paging"] = {"next": {"after": nxt, "link": f"{sb.url}{ctx.path or ctx.op.path}?after={nxt}&limit={limit}"}}
        return Outcome(200, out)
    return handler


def h_object_update(kind: str, param: str) -> Handler:
    def handler(sb: Sandbox, ctx: Context) -> Outcome:
        oid = str(ctx.path_params[param])
        if not sb.records.exists(kind, oid):
            raise not_found(f"Object not found. ({kind} {oid})")
        props = crm.check_properties(kind, ctx.body.get("properties", {}), creating=False, owners=sb.records.owner_ids(),
                                     portal_id=sb.credentials.portal_id)
        obj = sb.records.update_object(kind, oid, props)
        return Outcome(200, crm.public_object(obj, list(props)))
    return handler


def h_object_delete(kind: str, param: str) -> Handler:
    """Archive: the object and its associations go. HubSpot answers 204 for an id it does not know as
    well (archiving is idempotent; unverified against HubSpot, the description lists 204 only)."""
    def handler(sb: Sandbox, ctx: Context) -> Outcome:
        sb.records.archive_object(kind, str(ctx.path_params[param]))
        return Outcome(204)
    return handler


def _assoc_result(from_kind: str, from_id: str, to_kind: str, to_id: str, labels: list[str]) -> dict[str, Any]:
    return {"fromObjectTypeId": crm.TYPE_IDS[from_kind], "fromObjectId": str(from_id),
            "toObjectTypeId": crm.TYPE_IDS[to_kind], "toObjectId": str(to_id), "labels": labels}


def _default_spec(from_kind: str, to_kind: str) -> dict[str, Any]:
    type_id = crm.ASSOCIATION_TYPES.get((from_kind, to_kind))
    if type_id is None:
        raise validation(f"There is no default association from {from_kind} to {to_kind}")
    return {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}


def h_assoc_default(sb: Sandbox, ctx: Context) -> Outcome:
    from_kind, to_kind = _object_kind_from(ctx, "fromObjectType"), _object_kind_from(ctx, "toObjectType")
    from_id, to_id = str(ctx.path_params["fromObjectId"]), str(ctx.path_params["toObjectId"])
    spec_ = _default_spec(from_kind, to_kind)
    sb.records.associate(from_kind, from_id, to_kind, to_id, [spec_])
    now = crm.now_iso()
    return Outcome(200, {"status": "COMPLETE", "results": [{"from": {"id": from_id}, "to": {"id": to_id},
                                                            "associationSpec": spec_}],
                         "startedAt": now, "completedAt": now})


def h_assoc_create(sb: Sandbox, ctx: Context) -> Outcome:
    from_kind, to_kind = _object_kind_from(ctx, "objectType"), _object_kind_from(ctx, "toObjectType")
    from_id, to_id = str(ctx.path_params["objectId"]), str(ctx.path_params["toObjectId"])
    sb.records.associate(from_kind, from_id, to_kind, to_id, list(ctx.body))
    return Outcome(201, _assoc_result(from_kind, from_id, to_kind, to_id, []))


def h_assoc_list(sb: Sandbox, ctx: Context) -> Outcome:
    from_kind, to_kind = _object_kind_from(ctx, "objectType"), _object_kind_from(ctx, "toObjectType")
    oid = str(ctx.path_params["objectId"])
    if not sb.records.exists(from_kind, oid):
        raise not_found(f"No {from_kind} with id {oid}")
    links = [a for a in sb.associations() if a["fromType"] == from_kind and a["fromId"] == oid
             and a["toType"] == to_kind]
    return Outcome(200, {"results": [{"toObjectId": a["toId"], "associationTypes": [
        {"category": t["category"], "typeId": t["typeId"]} for t in a["types"]]} for a in links]})


def h_assoc_delete(sb: Sandbox, ctx: Context) -> Outcome:
    from_kind, to_kind = _object_kind_from(ctx, "objectType"), _object_kind_from(ctx, "toObjectType")
    sb.records.dissociate(from_kind, str(ctx.path_params["objectId"]), to_kind, str(ctx.path_params["toObjectId"]))
    return Outcome(204)


def _batch_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
    """One entry of a 207 answer's ``errors`` (HubSpot's ``StandardError``; its ``subCategory``, typed as an
    object there and a string in HubSpot's answers, is left out)."""
    return {"status": "error", "category": category, "message": message, "context": context, "errors": [],
            "links": {}}


def _batch_answer(ok_status: int, started: str, results: list[Any], errors: list[dict[str, Any]]) -> Outcome:
    """A batch answer: ``ok_status`` when every input succeeded, 207 with ``errors`` when some did not."""
    payload: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                               "completedAt": crm.now_iso()}
    if not errors:
        return Outcome(ok_status, payload)
    return Outcome(207, {**payload, "numErrors": len(errors), "errors": errors})


def _batch_associate(sb: Sandbox, ctx: Context, ok_status: int, types_of: Callable[[dict[str, Any]], list[Any]],
                     result_of: Callable[[str, str, list[Any]], dict[str, Any]]) -> Outcome:
    """Each input on its own, as HubSpot does: the pairs whose records exist are associated, the others
    are listed in a 207 answer (a bad association type still refuses the whole request)."""
    from_kind, to_kind = _object_kind_from(ctx, "fromObjectType"), _object_kind_from(ctx, "toObjectType")
    started = crm.now_iso()
    results, errors = [], []
    for item in ctx.body["inputs"]:
        from_id, to_id = str(item["from"]["id"]), str(item["to"]["id"])
        types = types_of(item)
        sb.records.check_association_types(from_kind, to_kind, types)
        missing = [f"{k} {i}" for k, i in ((from_kind, from_id), (to_kind, to_id)) if not sb.records.exists(k, i)]
        if missing:
            errors.append(_batch_error("OBJECT_NOT_FOUND", f"No such record: {', '.join(missing)}",
                                       {"fromId": [from_id], "toId": [to_id]}))
            continue
        sb.records.associate(from_kind, from_id, to_kind, to_id, types)
        results.append(result_of(from_id, to_id, types))
    return _batch_answer(ok_status, started, results, errors)


def h_assoc_batch_create(sb: Sandbox, ctx: Context) -> Outcome:
    from_kind, to_kind = _object_kind_from(ctx, "fromObjectType"), _object_kind_from(ctx, "toObjectType")
    return _batch_associate(sb, ctx, 201, lambda item: list(item["types"]),
                            lambda f, t, _types: _assoc_result(from_kind, f, to_kind, t, []))


def h_assoc_batch_default(sb: Sandbox, ctx: Context) -> Outcome:
    spec_ = _default_spec(_object_kind_from(ctx, "fromObjectType"), _object_kind_from(ctx, "toObjectType"))
    return _batch_associate(sb, ctx, 200, lambda _item: [spec_],
                            lambda f, t, _types: {"from": {"id": f}, "to": {"id": t}, "associationSpec": spec_})


def h_assoc_batch_read(sb: Sandbox, ctx: Context) -> Outcome:
    """The associations of many records; a record with none is an error of a 207 answer, as on HubSpot."""
    from_kind, to_kind = _object_kind_from(ctx, "fromObjectType"), _object_kind_from(ctx, "toObjectType")
    started = crm.now_iso()
    links = sb.associations()
    results, errors = [], []
    for item in ctx.body["inputs"]:
        oid = str(item["id"])
        mine = [a for a in links if a["fromType"] == from_kind and a["fromId"] == oid and a["toType"] == to_kind]
        if not mine:
            errors.append(_batch_error("OBJECT_NOT_FOUND", f"No {to_kind[:-1]} is associated with {from_kind[:-1]} "
                                       f"{oid}.", {"fromObjectId": [oid]}))
            continue
        results.append({"from": {"id": oid}, "to": [
            {"toObjectId": a["toId"], "associationTypes": [{"category": t["category"], "typeId": t["typeId"],
                                                            "label": None} for t in a["types"]]} for a in mine]})
    return _batch_answer(200, started, results, errors)


def h_assoc_labels(sb: Sandbox, ctx: Context) -> Outcome:
    from_kind, to_kind = _object_kind_from(ctx, "fromObjectType"), _object_kind_from(ctx, "toObjectType")
    type_id = crm.ASSOCIATION_TYPES.get((from_kind, to_kind))
    results = [] if type_id is None else [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}]
    return Outcome(200, {"results": results})


def _public_owner(owner: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in owner.items() if k != "paid_seat"}


def h_owners_list(sb: Sandbox, ctx: Context) -> Outcome:
    limit = int(ctx.query.get("limit", 100))
    if not 1 <= limit <= 500:
        raise validation(f"limit must be between 1 and 500, got {limit}")
    archived = bool(ctx.query.get("archived", False))
    email = ctx.query.get("email")
    owners = [o for o in sb.owners() if bool(o.get("archived")) == archived
              and (not email or o["email"].lower() == str(email).lower())]
    after = str(ctx.query.get("after") or "0")
    start = int(after) if after.isdigit() else 0
    page = owners[start:start + limit]
    out: dict[str, Any] = {"results": [_public_owner(o) for o in page]}
    if start + limit < len(owners):
        nxt = str(start + limit)
        out["paging"] = {"next": {"after": nxt, "link": f"{sb.url}/crm/v3/owners?after={nxt}&limit={limit}"}}
    return Outcome(200, out)


def h_owners_get(sb: Sandbox, ctx: Context) -> Outcome:
    owner = sb.store.get("owners", str(ctx.path_params["ownerId"]))
    if owner is None:
        raise not_found(f"Owner {ctx.path_params['ownerId']} not found")
    return Outcome(200, _public_owner(owner))


def h_dispositions(sb: Sandbox, ctx: Context) -> Outcome:
    return Outcome(200, [{"id": did, "label": label} for did, label in crm.DISPOSITIONS])


def h_account_details(sb: Sandbox, ctx: Context) -> Outcome:
    return Outcome(200, {"portalId": sb.credentials.portal_id, "accountType": "STANDARD", "timeZone": "US/Eastern",
                         "companyCurrency": "USD", "additionalCurrencies": [], "utcOffset": "-05:00",
                         "utcOffsetMilliseconds": -18_000_000, "uiDomain": "app.hubspot.com",
                         "dataHostingLocation": "na1"})


def _oauth_error(status: str, message: str) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, extra={"status": status})


def h_oauth_authorize(sb: Sandbox, ctx: Context) -> Outcome:
    if ctx.query["client_id"] != sb.credentials.client_id:
        raise _oauth_error("BAD_CLIENT_ID", "Authorization failed: unknown client_id")
    redirect = str(ctx.query["redirect_uri"])
    parts = urllib.parse.urlsplit(redirect)
    if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost"))):
        raise _oauth_error("BAD_REDIRECT_URI", "redirect_uri must be https, or http on loopback")
    scopes = [s for s in (str(ctx.query["scope"]) + " " + str(ctx.query.get("optional_scope", ""))).split() if s]
    code = secrets.token_urlsafe(24)
    sb.store.put("auth_codes", code, {"redirect_uri": redirect, "scopes": scopes, "expires_at": time.time() + 600})
    query = {"code": code}
    if ctx.query.get("state") is not None:
        query["state"] = str(ctx.query["state"])
    location = f"{redirect}{'&' if parts.query else '?'}{urllib.parse.urlencode(query)}"
    return Outcome(302, None, [("Location", location)])


def h_oauth_token(sb: Sandbox, ctx: Context) -> Outcome:
    form = dict(ctx.body or {})
    for key in ("client_secret", "refresh_token"):  # the description also allows these in the query
        if key in ctx.query and key not in form:
            form[key] = ctx.query[key]
    grant = form.get("grant_type")
    if form.get("client_id") != sb.credentials.client_id:
        raise _oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
    if form.get("client_secret") != sb.credentials.client_secret:
        raise _oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret")
    with sb.store.lock:
        if grant == "authorization_code":
            code = sb.store.get("auth_codes", str(form.get("code")))
            if code is None or code["expires_at"] < time.time():
                raise _oauth_error("BAD_AUTH_CODE", "missing or unknown auth code")
            if form.get("redirect_uri") != code["redirect_uri"]:
                raise _oauth_error("BAD_REDIRECT_URI", "redirect_uri does not match the one of the authorization")
            sb.store.delete("auth_codes", str(form.get("code")))
            scopes = code["scopes"]
        elif grant == "refresh_token":
            old = str(form.get("refresh_token"))
            rec = sb.store.get("refresh_tokens", old)
            if rec is None or not rec.get("valid"):
                raise _oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
            scopes = rec["scopes"]
            if sb.rotate_refresh_tokens:
                sb.store.put("refresh_tokens", old, {**rec, "valid": False})
        else:
            raise _oauth_error("UNSUPPORTED_GRANT_TYPE", f"grant_type {grant!r} is not supported by the sandbox")
        access, refresh = sb.auth.issue_oauth(scopes)
        if grant == "refresh_token" and not sb.rotate_refresh_tokens:
            sb.store.delete("refresh_tokens", refresh)
            refresh = str(form.get("refresh_token"))
            sb.store.put("tokens", access, {**sb.store.get("tokens", access), "refresh": refresh})
    return Outcome(200, {"access_token": access, "refresh_token": refresh, "expires_in": sb.token_ttl_s,
                         "token_type": "bearer", "token_use": "access_token", "hub_id": sb.credentials.portal_id,
                         "scopes": scopes, "user_id": OWNER_SEEDS[0][4]})


def h_access_token_info(sb: Sandbox, ctx: Context) -> Outcome:
    token = str(ctx.path_params["token"])
    rec = sb.store.get("tokens", token)
    if rec is None or rec["kind"] != "oauth" or rec["expires_at"] <= time.time():
        raise not_found("Token not found or expired")
    return Outcome(200, {"token": token, "user": OWNER_SEEDS[0][1], "hub_domain": "sandbox.example.com",
                         "scopes": rec["scopes"], "hub_id": sb.credentials.portal_id, "app_id": sb.credentials.app_id,
                         "expires_in": max(0, int(rec["expires_at"] - time.time())), "user_id": OWNER_SEEDS[0][4],
                         "token_type": "access"})


def h_refresh_token_info(sb: Sandbox, ctx: Context) -> Outcome:
    token = str(ctx.path_params["token"])
    rec = sb.store.get("refresh_tokens", token)
    if rec is None or not rec.get("valid"):
        raise not_found("Refresh token not found")
    return Outcome(200, {"token": token, "user": OWNER_SEEDS[0][1], "hub_domain": "sandbox.example.com",
                         "scopes": rec["scopes"], "hub_id": sb.credentials.portal_id,
                         "client_id": sb.credentials.client_id, "user_id": OWNER_SEEDS[0][4], "token_type": "refresh"})


HANDLERS: dict[str, Handler] = {
    "settings.get": h_settings_get,
    "settings.create": h_settings_create,
    "settings.update": h_settings_update,
    "recordings.ready": h_recordings_ready,
    "transcripts.create": transcripts.h_create,
    "transcripts.get": transcripts.h_get,
    "transcripts.delete": transcripts.h_delete,
    "calling_settings.get": h_calling_settings_get,
    "calling_settings.create": h_calling_settings_create,
    "calling_settings.update": h_calling_settings_update,
    "calling_settings.delete": h_calling_settings_delete,
    "calls.create": h_object_create("calls"),
    "calls.batch_create": h_calls_batch_create,
    "calls.batch_read": h_calls_batch_read,
    "calls.search": h_search("calls"),
    "calls.get": h_object_get("calls", "callId"),
    "calls.update": h_object_update("calls", "callId"),
    "calls.list": h_object_list("calls"),
    "calls.delete": h_object_delete("calls", "callId"),
    "contacts.create": h_object_create("contacts"),
    "contacts.search": h_search("contacts"),
    "contacts.get": h_object_get("contacts", "contactId"),
    "contacts.list": h_object_list("contacts"),
    "contacts.update": h_object_update("contacts", "contactId"),
    "contacts.delete": h_object_delete("contacts", "contactId"),
    "associations.default": h_assoc_default,
    "associations.create": h_assoc_create,
    "associations.list": h_assoc_list,
    "associations.delete": h_assoc_delete,
    "associations.batch_create": h_assoc_batch_create,
    "associations.batch_default": h_assoc_batch_default,
    "associations.batch_read": h_assoc_batch_read,
    "associations.labels": h_assoc_labels,
    "owners.list": h_owners_list,
    "owners.get": h_owners_get,
    "dispositions": h_dispositions,
    "account.details": h_account_details,
    "oauth.authorize": h_oauth_authorize,
    "oauth.token": h_oauth_token,
    "oauth.access_token_info": h_access_token_info,
    "oauth.refresh_token_info": h_refresh_token_info,
}
