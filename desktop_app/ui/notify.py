"""Desktop notifications without a tray: the freedesktop Notifications service on the session bus.

Plain Python (``jeepney``, which the keyring brings on Linux), called in a worker: it opens the session
bus, sends ``Notify`` and waits up to a few seconds for the answer. Where there is no session bus or no
notification service (Windows, macOS, a bare X session) it returns False and the window's own signs
(status bar, taskbar attention) remain.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

APP_NAME = "Call Relay"


def desktop_notify(title: str, text: str, *, timeout_ms: int = 15000) -> bool:
    """Show a notification through org.freedesktop.Notifications; True when the service took it."""
    try:
        from jeepney import DBusAddress, MessageType, new_method_call
        from jeepney.io.blocking import open_dbus_connection
    except ImportError:
        return False
    address = DBusAddress("/org/freedesktop/Notifications", bus_name="org.freedesktop.Notifications",
                          interface="org.freedesktop.Notifications")
    try:
        with open_dbus_connection(bus="SESSION") as conn:
            call = new_method_call(address, "Notify", "susssasa{sv}i",
                                   (APP_NAME, 0, "dialog-warning", title, text, [], {}, timeout_ms))
            reply = conn.send_and_get_reply(call, timeout=5)
            return bool(reply.header.message_type == MessageType.method_return)
    except Exception as exc:  # noqa: BLE001 - no bus, no service: the window says it anyway
        log.info("no desktop notification: %s", exc)
        return False
