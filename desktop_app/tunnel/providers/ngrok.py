"""ngrok through its official Python SDK (the agent is inside the wheel; nothing is downloaded).

The authtoken comes from the keyring; an optional reserved domain keeps the URL across restarts.
A real tunnel needs the internet and an ngrok account. The free plan shows browsers a warning page
(the reachability check notices and says so) and caps traffic at about 1 GB and 20,000 requests a
month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from desktop_app import keystore
from desktop_app.tunnel.base import Tunnel, TunnelConfigError, TunnelError

ERROR_CODE = re.compile(r"ERR_NGROK_\d+")

# ngrok's error codes (https://ngrok.com/docs/errors/) that no retry fixes, with what to do.
CONFIG_CODES = {
    "ERR_NGROK_105": "ngrok rejected the authtoken: copy it again from https://dashboard.ngrok.com and "
                     "save it in the settings.",
    "ERR_NGROK_106": "ngrok rejected the authtoken: copy it again from https://dashboard.ngrok.com.",
    "ERR_NGROK_107": "ngrok rejected the authtoken: copy it again from https://dashboard.ngrok.com.",
    "ERR_NGROK_4018": "ngrok needs an account's authtoken: sign up at https://dashboard.ngrok.com.",
    "ERR_NGROK_313": "That ngrok domain needs a paid plan or is not reserved in your account.",
    "ERR_NGROK_320": "That ngrok domain is reserved by another account.",
    "ERR_NGROK_319": "That ngrok domain is not reserved in your ngrok account (dashboard → Domains).",
}
TRANSIENT_HINTS = {
    "ERR_NGROK_108": "Your ngrok account already has its agent sessions in use elsewhere; close the other "
                     "ngrok agent (the app retries).",
    "ERR_NGROK_334": "That ngrok domain is already online in another session (the app retries).",
}


def describe_ngrok_error(exc: BaseException) -> TunnelError:
    """Turn the SDK's exception (a ValueError whose args are message, detail and maybe a code) into
    a TunnelConfigError (no retry helps) or a TunnelError (retry), with a sentence a user can act on."""
    parts = [str(a) for a in getattr(exc, "args", ()) if a] or [str(exc)]
    text = ": ".join(dict.fromkeys(parts))
    match = ERROR_CODE.search(text)
    code = match.group(0) if match else None
    if code in CONFIG_CODES:
        return TunnelConfigError(f"{CONFIG_CODES[code]} ({text})")
    if code in TRANSIENT_HINTS:
        return TunnelError(f"{TRANSIENT_HINTS[code]} ({text})")
    low = text.lower()
    if "tcp connection" in low or "dns" in low or "tls handshake" in low or "timed out" in low:
        return TunnelError(f"ngrok's service cannot be reached ({text}). A real ngrok tunnel needs the "
                           "internet; the recording server keeps working on this computer.")
    return TunnelError(f"ngrok failed: {text}")


@dataclass(frozen=True)
class NgrokConfig:
    local_addr: str  # 127.0.0.1:PORT of the recording server
    domain: str = ""  # reserved domain, e.g. calls.ngrok.app
    server_addr: str = ""  # ngrok's ingress; empty for the default (tests point it at loopback)


class NgrokTunnel(Tunnel):
    name = "ngrok"

    def __init__(self, cfg: NgrokConfig, *, authtoken: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cfg = cfg
        self._authtoken = authtoken
        self._url: str | None = None

    def _token(self) -> str:
        token = self._authtoken if self._authtoken is not None else keystore.get(keystore.NGROK_AUTHTOKEN)
        if not token:
            raise TunnelConfigError("No ngrok authtoken is saved: copy yours from "
                                    "https://dashboard.ngrok.com/get-started/your-authtoken into the settings.")
        return token

    def options(self) -> dict[str, str]:
        """The SDK's keyword options for ``ngrok.forward`` (pure; the token is added by ``_open``)."""
        opts: dict[str, str] = {"proto": "http"}
        if self.cfg.domain:
            opts["domain"] = self.cfg.domain.removeprefix("https://").rstrip("/")
        if self.cfg.server_addr:
            opts["server_addr"] = self.cfg.server_addr
        return opts

    def _open(self) -> str:
        import ngrok  # the SDK loads a native library: only when this provider is used

        token = self._token()
        forward: Any = ngrok.forward  # its stub names the 2nd parameter ``listener``; it is ``proto``
        try:
            listener = forward(self.cfg.local_addr, authtoken=token, **self.options())
        except ValueError as exc:
            raise describe_ngrok_error(exc) from None
        url = str(listener.url())
        self._url = url
        return url

    def _close(self) -> None:
        url, self._url = self._url, None
        if url is None:
            return
        import ngrok

        try:
            ngrok.disconnect(url)
        except ValueError:
            pass
