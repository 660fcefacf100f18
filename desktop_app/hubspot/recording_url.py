"""Read before register: a desk never silently re-points the recording URL something else registered.

HubSpot keeps one recording URL (``urlToRetrieveAuthedRecording``) per app. A desk (the app, ``callrelay
serve``, ``callrelay upload``) that points it at its own server while another desk or the team's relay holds
it stops every other call from playing. So before it replaces the URL HubSpot has, the client asks a
``RecordingUrlGuard``: replacing is allowed when HubSpot has no URL, already has this one, or has the URL this
desk registered last (its own earlier tunnel URL, remembered in the ``hubspot.own_recording_url`` setting);
anything else is another's, taken over only when the user said so (``--take-over``, or Take over in the
app's question), else refused with ``RecordingUrlTaken``, whose sentence names the URL registered now.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

OWN_URL_SETTING = "hubspot.own_recording_url"

# (the URL registered now, the URL this desk wants) -> take it over?
AskTakeOver = Callable[[str, str], bool]


class RecordingUrlTaken(ValueError):
    """HubSpot's recording URL is another's, and this desk was not told to take it over."""

    def __init__(self, current: str, wanted: str, app_id: str = "") -> None:
        self.current, self.wanted, self.app_id = current, wanted, app_id
        app = f" for app {app_id}" if app_id else ""
        super().__init__(
            f"HubSpot's recording URL{app} is registered now as {current}, which this desk did not register "
            f"(another desk or the team's relay did), so it was left as it is; to point it at this desk "
            f"instead, run `callrelay serve --take-over` or answer Take over in the app."
        )


@dataclass
class RecordingUrlGuard:
    """Decides whether this desk may replace the recording URL HubSpot has (see the module's text).

    ``own`` gives the URL this desk registered last and ``remember`` keeps a new one; ``take_over`` is True
    (``--take-over``), False (refuse), or a question asked with the URL registered now and the one wanted
    (the app's dialog; called from a worker thread, it may block until answered)."""

    own: Callable[[], str]
    remember: Callable[[str], None]
    take_over: bool | AskTakeOver = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, current: str | None, wanted: str, app_id: str = "") -> None:
        """Return when ``current`` may be replaced by ``wanted``; else raise RecordingUrlTaken."""
        if current is None or current == wanted:
            return
        try:
            mine = self.own()
        except Exception:  # noqa: BLE001 - not knowing our own URL means treating it as another's
            log.warning("the URL this desk registered last cannot be read", exc_info=True)
            mine = ""
        if mine and current == mine:
            return
        with self._lock:  # one question at a time (the tunnel and the pipeline may both ask)
            decision = self.take_over
            if callable(decision):
                decision = bool(decision(current, wanted))
        if decision is True:
            log.warning("taking over HubSpot's recording URL%s from %s", f" for app {app_id}" if app_id else "",
                        current)
            return
        raise RecordingUrlTaken(current, wanted, app_id)

    def registered(self, url: str) -> None:
        """``url`` is now HubSpot's recording URL, put there by this desk (or found there as this desk wants)."""
        try:
            if self.own() != url:
                self.remember(url)
        except Exception:  # noqa: BLE001 - the registration itself succeeded; the next start asks again
            log.warning("the registered recording URL could not be remembered", exc_info=True)


def settings_guard(take_over: bool | AskTakeOver = False, *, shared: object | None = None) -> RecordingUrlGuard:
    """A guard that remembers this desk's URL in the data directory's settings (``hubspot.own_recording_url``),
    read and written afresh each time (another process of the desk may have registered since). ``shared``: a
    ``Settings`` object the caller keeps using (the app's), updated too so that its next save keeps the URL."""
    from desktop_app import settings as settings_mod

    def own() -> str:
        return str(settings_mod.load().get(OWN_URL_SETTING) or "")

    def remember(url: str) -> None:
        fresh = settings_mod.load()
        fresh.set(OWN_URL_SETTING, url)
        fresh.save()
        if isinstance(shared, settings_mod.Settings):
            shared.set(OWN_URL_SETTING, url)

    return RecordingUrlGuard(own=own, remember=remember, take_over=take_over)
