"""The app's look in one place: status colours, icons, the dark palette and following the system's scheme.

Colours are chosen for the palette in use (``is_dark``), so a status stays readable in both schemes.
Icons are the style's standard pixmaps (or the desktop theme's icon of that name where there is one),
so they fit the platform and never go missing."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QWidget

SP = QStyle.StandardPixmap

# -- status colours --------------------------------------------------------------------------------
# What a status means for the agent: done, waiting/working, needs a look, went wrong, or nothing yet.
GOOD, BUSY, WARN, BAD, IDLE = "good", "busy", "warn", "bad", "idle"
KIND = {
    "transcribed": GOOD, "ready": GOOD, "ready to fill in": IDLE,
    "inspecting": BUSY, "fixing": BUSY, "uploading": BUSY, "retrying": BUSY, "queued": BUSY, "running": BUSY,
    "not-transcribed": WARN, "already logged": WARN,
    "failed": BAD, "fix failed": BAD, "cannot be uploaded": BAD, "cannot be read": BAD,
}
# (light scheme, dark scheme): dark text on a light base, light text on a dark base (contrast >= 4.5:1)
COLOURS = {
    GOOD: ("#1b6e20", "#81c784"),
    BUSY: ("#0d47a1", "#90caf9"),
    WARN: ("#8a4b00", "#ffb74d"),
    BAD: ("#b71c1c", "#ef9a9a"),
}


def status_kind(status: str) -> str:
    return KIND.get(status, IDLE)


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether ``palette`` (the application's by default) is a dark one: light text on a dark window."""
    pal = palette if palette is not None else QGuiApplication.palette()
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


def status_colour(status: str, palette: QPalette | None = None) -> QColor | None:
    """The text colour of ``status`` for ``palette`` (None: the palette's own text colour)."""
    pair = COLOURS.get(status_kind(status))
    if pair is None:
        return None
    return QColor(pair[1] if is_dark(palette) else pair[0])


def status_icon(status: str, widget: QWidget | None = None) -> QIcon:
    kind = status_kind(status)
    pixmap = {GOOD: SP.SP_DialogApplyButton, BUSY: SP.SP_BrowserReload, WARN: SP.SP_MessageBoxWarning,
              BAD: SP.SP_MessageBoxCritical}.get(kind)
    return icon(pixmap, widget=widget) if pixmap is not None else QIcon()


# -- icons -----------------------------------------------------------------------------------------
ICONS = {  # a name of the freedesktop theme, the style's standard pixmap when the theme has none
    "open": ("document-open", SP.SP_DialogOpenButton),
    "remove": ("list-remove", SP.SP_TrashIcon),
    "upload": ("go-up", SP.SP_ArrowUp),
    "retry": ("view-refresh", SP.SP_BrowserReload),
    "hubspot": ("internet-web-browser", SP.SP_DirLinkIcon),
    "copy": ("edit-copy", SP.SP_FileDialogDetailedView),
    "again": ("edit-redo", SP.SP_MediaSkipForward),
    "page_upload": ("document-send", SP.SP_ArrowUp),
    "page_history": ("document-open-recent", SP.SP_FileDialogContentsView),
    "page_settings": ("preferences-system", SP.SP_FileDialogListView),
}


def icon(which: str | QStyle.StandardPixmap | None, widget: QWidget | None = None) -> QIcon:
    """The icon for one of ``ICONS`` (theme first, then the style's), or a standard pixmap's icon."""
    if which is None:
        return QIcon()
    style = widget.style() if widget is not None else QApplication.style()
    if isinstance(which, str):
        theme, fallback = ICONS[which]
        found = QIcon.fromTheme(theme)
        return found if not found.isNull() else style.standardIcon(fallback)
    return style.standardIcon(which)


def decorate_panel(panel: QWidget) -> None:
    """Icons on a recording panel's actions (its buttons are named by the panel)."""
    for attr, name in (("upload_button", "upload"), ("retry_button", "retry"), ("open_button", "hubspot"),
                       ("copy_button", "copy"), ("log_again_button", "again")):
        button = getattr(panel, attr, None)
        if button is not None:
            button.setIcon(icon(name, panel))


def decorate_window(window: QWidget) -> None:
    """Icons on the main window's pages (its tabs)."""
    tabs = getattr(window, "tabs", None)
    if tabs is None:
        return
    for i, name in enumerate(("page_upload", "page_history", "page_settings")):
        if i < tabs.count():
            tabs.setTabIcon(i, icon(name, window))


# -- the colour scheme -----------------------------------------------------------------------------
def dark_palette() -> QPalette:
    R, G = QPalette.ColorRole, QPalette.ColorGroup  # noqa: N806 - short names for a table
    pal = QPalette()
    colours = {
        R.Window: "#2b2d30", R.WindowText: "#e6e6e6", R.Base: "#1e1f22", R.AlternateBase: "#26282b",
        R.ToolTipBase: "#3c3f41", R.ToolTipText: "#e6e6e6", R.PlaceholderText: "#8c8c8c", R.Text: "#e6e6e6",
        R.Button: "#3a3d41", R.ButtonText: "#e6e6e6", R.BrightText: "#ff6b6b", R.Light: "#4a4d52",
        R.Midlight: "#404347", R.Mid: "#34373a", R.Dark: "#1b1c1e", R.Shadow: "#000000",
        R.Highlight: "#3d7bd9", R.HighlightedText: "#ffffff", R.Link: "#8ab4f8", R.LinkVisited: "#c58af9",
    }
    for role, colour in colours.items():
        pal.setColor(role, QColor(colour))
    for role in (R.WindowText, R.Text, R.ButtonText):
        pal.setColor(G.Disabled, role, QColor("#7a7a7a"))
    pal.setColor(G.Disabled, R.Base, QColor("#26282b"))
    pal.setColor(G.Disabled, R.Button, QColor("#323438"))
    return pal


def apply_scheme(app: QApplication, scheme: Qt.ColorScheme | None = None) -> bool:
    """Give ``app`` the palette of ``scheme`` (the system's by default); returns whether it is dark.

    Dark: the app's dark palette. Light or unknown: the style's standard (light) palette."""
    if scheme is None:
        scheme = app.styleHints().colorScheme()
    dark = scheme == Qt.ColorScheme.Dark
    app.setPalette(dark_palette() if dark else app.style().standardPalette())
    for widget in app.allWidgets():  # a widget with a style sheet keeps its old palette until re-polished
        sheet = widget.styleSheet()
        if sheet:
            widget.setStyleSheet(sheet)
    return dark


class SchemeFollower(QObject):
    """Keeps the app's palette on the system's colour scheme as it changes (``colorSchemeChanged``)."""

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self.app = app
        self.dark = apply_scheme(app)
        app.styleHints().colorSchemeChanged.connect(self.changed)

    def changed(self, scheme: Qt.ColorScheme) -> None:
        self.dark = apply_scheme(self.app, scheme)


def follow_system_scheme(app: QApplication) -> SchemeFollower:
    return SchemeFollower(app)
