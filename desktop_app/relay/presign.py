"""S3's presigned links (SigV4 in the query string) signed here, without botocore's request machinery.

HubSpot's endpoint answers every request with a fresh presigned link, and botocore's
``generate_presigned_url`` builds a whole request (endpoint rules, event hooks, a new signer) for each:
in ``benchmarks/relay.py`` it was about half of the relay's CPU per endpoint answer. A link is a few
HMACs over a canonical request, so `Presigner` makes it itself, from what botocore's own link shows:
for each operation it asks botocore for one link (of a probe key holding every character a key may
hold), reads the base URL, the bucket's path, the region and the extra parameters off it, signs the same
request again itself with that link's timestamp, and signs locally from then on only when its signature
is botocore's, byte for byte; else (another signing scheme, credentials it cannot read, parameters it
does not know) every link keeps coming from botocore, as before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
_SIGNED = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
           "X-Amz-Security-Token", "X-Amz-Signature")
PROBE_KEY = ".callrelay-probe/a=b+c@d.e_f-g"  # every character `storage.check_key` lets a key hold


def _q(text: str) -> str:
    return quote(text, safe="-_.~")


@dataclass(frozen=True)
class _Template:
    method: str
    base: str  # scheme://host[:port]
    host: str
    prefix: str  # the path before the key: "/BUCKET/" (path-style) or "/" (virtual-host)
    region: str
    service: str
    extra: tuple[str, ...]  # the operation's own query parameters (their names)


class Presigner:
    """``url(operation, params, key, extra, ttl_s)``: a presigned link for ``operation`` on ``key`` (the
    object's full key) with ``extra`` query parameters (``params``: the same for botocore)."""

    def __init__(self, client: Any, credentials: Any) -> None:
        self._client = client
        self._credentials = credentials  # botocore Credentials (refreshable ones refresh themselves)
        self._templates: dict[str, _Template | None] = {}
        self._keys: dict[tuple[str, str, str, str], bytes] = {}
        self._lock = threading.Lock()

    def _botocore(self, operation: str, params: Mapping[str, Any], ttl_s: int, method: str | None) -> str:
        return str(self._client.generate_presigned_url(operation, Params=dict(params), ExpiresIn=ttl_s,
                                                       HttpMethod=method))

    def url(self, operation: str, params: Mapping[str, Any], key: str, extra: Mapping[str, str], ttl_s: int,
            *, method: str = "GET", now: dt.datetime | None = None) -> str:
        template = self._template(operation, params, extra, method)
        frozen = self._frozen()
        if template is None or frozen is None:
            return self._botocore(operation, params, ttl_s, method if method != "GET" else None)
        stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
        return self._sign(template, key, extra, ttl_s, stamp, frozen)

    def _frozen(self) -> Any:
        if self._credentials is None:
            return None
        try:
            frozen = self._credentials.get_frozen_credentials()
        except Exception:  # noqa: BLE001 - botocore's own path says what is wrong with the credentials
            return None
        return frozen if frozen.access_key and frozen.secret_key else None

    def _template(self, operation: str, params: Mapping[str, Any], extra: Mapping[str, str],
                  method: str) -> _Template | None:
        if operation in self._templates:
            template = self._templates[operation]
            return template if template is not None and set(extra) == set(template.extra) else None
        with self._lock:
            if operation not in self._templates:
                self._templates[operation] = self._learn(operation, params, extra, method)
        return self._template(operation, params, extra, method)

    def _learn(self, operation: str, params: Mapping[str, Any], extra: Mapping[str, str],
               method: str) -> _Template | None:
        """botocore's link for the probe key, and the template when this signer makes that very link."""
        frozen = self._frozen()
        if frozen is None:
            return None
        probe_key = PROBE_KEY
        try:
            probe = self._botocore(operation, {**params, "Key": probe_key}, 3600, method if method != "GET" else None)
        except Exception:  # noqa: BLE001 - the real link is asked of botocore again, which says what failed
            return None
        parts = urlsplit(probe)
        quoted = quote(probe_key, safe="/~")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if not parts.path.endswith(quoted) or query.get("X-Amz-Algorithm") != ALGORITHM \
                or query.get("X-Amz-SignedHeaders") != "host" or len(query) != len(parse_qsl(parts.query)):
            return None
        own = {k: v for k, v in query.items() if k not in _SIGNED}
        if set(own) != set(extra):
            return None
        try:
            _, _, region, service, _ = query["X-Amz-Credential"].split("/")
        except ValueError:
            return None
        template = _Template(method, f"{parts.scheme}://{parts.netloc}", parts.netloc,
                             parts.path[: -len(quoted)], region, service, tuple(sorted(extra)))
        again = self._sign(template, probe_key, own, int(query["X-Amz-Expires"]), query["X-Amz-Date"], frozen)
        if dict(parse_qsl(urlsplit(again).query)) != query or urlsplit(again).path != parts.path:
            return None
        return template

    def _signing_key(self, secret: str, date: str, region: str, service: str) -> bytes:
        cache = (secret, date, region, service)
        found = self._keys.get(cache)
        if found is None:
            found = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
            for part in (region, service, "aws4_request"):
                found = hmac.new(found, part.encode(), hashlib.sha256).digest()
            if len(self._keys) > 16:
                self._keys.clear()
            self._keys[cache] = found
        return found

    def _sign(self, t: _Template, key: str, extra: Mapping[str, str], ttl_s: int, stamp: str, frozen: Any) -> str:
        scope = f"{stamp[:8]}/{t.region}/{t.service}/aws4_request"
        query = {**extra, "X-Amz-Algorithm": ALGORITHM, "X-Amz-Credential": f"{frozen.access_key}/{scope}",
                 "X-Amz-Date": stamp, "X-Amz-Expires": str(int(ttl_s)), "X-Amz-SignedHeaders": "host"}
        if frozen.token:
            query["X-Amz-Security-Token"] = frozen.token
        canonical_query = "&".join(f"{_q(k)}={_q(v)}" for k, v in sorted(query.items()))
        path = t.prefix + quote(key, safe="/~")
        canonical = f"{t.method}\n{path}\n{canonical_query}\nhost:{t.host}\n\nhost\nUNSIGNED-PAYLOAD"
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(frozen.secret_key, stamp[:8], t.region, t.service),
                             to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{t.base}{path}?{canonical_query}&X-Amz-Signature={signature}"

