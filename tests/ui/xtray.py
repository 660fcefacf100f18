"""A minimal system-tray host for an X display, for the tray tests: it owns the ``_NET_SYSTEM_TRAY_S<n>``
selection (the freedesktop system tray specification) and announces itself with the ``MANAGER`` client
message, which is what Qt's xcb platform looks for before it says a tray is available. It embeds
nothing; it prints ``ready`` and keeps the selection until killed.

Run as ``python xtray.py`` with ``DISPLAY`` set. Only libX11 (through ctypes) is needed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

Display = ctypes.c_void_p
Window = Atom = Time = ctypes.c_ulong


class ClientMessage(ctypes.Structure):  # XClientMessageEvent, 32-bit data
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", Display), ("window", Window), ("message_type", Atom), ("format", ctypes.c_int),
                ("data", ctypes.c_long * 5)]


class XEvent(ctypes.Union):
    _fields_ = [("type", ctypes.c_int), ("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]


def main() -> int:
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = Display
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultScreen.argtypes = [Display]
    x11.XRootWindow.restype = Window
    x11.XRootWindow.argtypes = [Display, ctypes.c_int]
    x11.XCreateSimpleWindow.restype = Window
    x11.XCreateSimpleWindow.argtypes = [Display, Window, ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                        ctypes.c_uint, ctypes.c_ulong, ctypes.c_ulong]
    x11.XInternAtom.restype = Atom
    x11.XInternAtom.argtypes = [Display, ctypes.c_char_p, ctypes.c_int]
    x11.XSetSelectionOwner.argtypes = [Display, Atom, Window, Time]
    x11.XGetSelectionOwner.restype = Window
    x11.XGetSelectionOwner.argtypes = [Display, Atom]
    x11.XSendEvent.argtypes = [Display, Window, ctypes.c_int, ctypes.c_long, ctypes.POINTER(XEvent)]
    x11.XFlush.argtypes = [Display]
    x11.XNextEvent.argtypes = [Display, ctypes.POINTER(XEvent)]

    display = x11.XOpenDisplay(None)
    if not display:
        print("cannot open the display", file=sys.stderr)
        return 1
    screen = x11.XDefaultScreen(display)
    root = x11.XRootWindow(display, screen)
    owner = x11.XCreateSimpleWindow(display, root, 0, 0, 1, 1, 0, 0, 0)
    selection = x11.XInternAtom(display, f"_NET_SYSTEM_TRAY_S{screen}".encode(), 0)
    x11.XSetSelectionOwner(display, selection, owner, 0)  # CurrentTime
    if x11.XGetSelectionOwner(display, selection) != owner:
        print("another tray owns the selection", file=sys.stderr)
        return 1
    event = XEvent()
    event.xclient.type = 33  # ClientMessage
    event.xclient.window = root
    event.xclient.message_type = x11.XInternAtom(display, b"MANAGER", 0)
    event.xclient.format = 32
    event.xclient.data[:] = [0, selection, owner, 0, 0]
    x11.XSendEvent(display, root, 0, 1 << 17, ctypes.byref(event))  # StructureNotifyMask
    x11.XFlush(display)
    print("ready", flush=True)
    while True:  # keep the selection (and answer nothing) until killed
        x11.XNextEvent(display, ctypes.byref(event))


if __name__ == "__main__":
    sys.exit(main())
