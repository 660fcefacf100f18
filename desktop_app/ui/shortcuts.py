"""The app's keyboard shortcuts: one table, from which the window makes its actions and Help lists them.

Next/previous recording is Alt+Down / Alt+Up (Ctrl+PgDown/PgUp already changes pages in a tab widget).
Two shortcuts give way to the focused control where it uses the same key: Space types a space in a text
field and presses a focused button; Alt+Down/Up opens a focused combo box's or date editor's list.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLineEdit,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

TEXT = "text"  # gives way to text fields
SPACE_USERS = "space"  # gives way to text fields, buttons, check boxes and combo boxes (Space is theirs)
POPUPS = "popups"  # gives way to combo boxes and date editors (Alt+Down/Up opens their list)


@dataclass(frozen=True)
class Shortcut:
    name: str  # what the window calls the action
    label: str  # as menus and the Help list say it
    keys: tuple[str, ...]  # portable QKeySequence text; the first is the one menus show
    note: str = ""  # when it applies, for the Help list
    yields: str = ""  # TEXT, SPACE_USERS, POPUPS: the focused controls that keep the key


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("open", "Open recordings…", ("Ctrl+O",)),
    Shortcut("upload", "Upload & Log the recording shown", ("Ctrl+Return", "Ctrl+Enter")),
    Shortcut("next", "Next recording in the queue", ("Alt+Down",), "except in a combo box or date", POPUPS),
    Shortcut("previous", "Previous recording in the queue", ("Alt+Up",), "except in a combo box or date", POPUPS),
    Shortcut("play", "Play / pause the recording shown", ("Space",), "except in a text field or on a button",
             SPACE_USERS),
    Shortcut("page_upload", "Upload & Log page", ("Ctrl+1",)),
    Shortcut("page_history", "Sync history page", ("Ctrl+2",)),
    Shortcut("page_settings", "Settings page", ("Ctrl+3",)),
    Shortcut("find", "Find in the history", ("Ctrl+F",)),
    Shortcut("refresh", "Refresh the history", ("F5",), "on the Sync history page"),
    Shortcut("shortcuts", "Keyboard shortcuts (this list)", ("F1",)),
    Shortcut("quit", "Quit Call Relay", ("Ctrl+Q",)),
)


def by_name(name: str) -> Shortcut:
    return next(s for s in SHORTCUTS if s.name == name)


def key_texts(shortcut: Shortcut) -> str:
    """The keys as this platform writes them (Ctrl+O, ⌘O), for menus and the Help list."""
    return " or ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in shortcut.keys)


def yields_to(shortcut: Shortcut, focus: QWidget | None) -> bool:
    """Whether the focused control keeps this shortcut's key (the shortcut is off while it has the focus)."""
    if not shortcut.yields or focus is None:
        return False
    if isinstance(focus.parentWidget(), (QComboBox, QAbstractSpinBox)):
        focus = focus.parentWidget()  # an editable combo's (or a spin box's) own line edit
    if isinstance(focus, (QComboBox, QDateTimeEdit)) and shortcut.yields in (POPUPS, SPACE_USERS):
        return True
    if shortcut.yields == POPUPS:
        return False
    text = isinstance(focus, (QLineEdit, QAbstractSpinBox, QPlainTextEdit))
    text = text or (isinstance(focus, QTextEdit) and not focus.isReadOnly())
    return text or (shortcut.yields == SPACE_USERS and isinstance(focus, QAbstractButton))


class ShortcutsDialog(QDialog):
    """Help → Keyboard shortcuts: the table above, as a list."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(SHORTCUTS), 2, self)
        table.setAccessibleName("Keyboard shortcuts")
        table.setHorizontalHeaderLabels(["Action", "Keys"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        for row, s in enumerate(SHORTCUTS):
            table.setItem(row, 0, QTableWidgetItem(s.label))
            keys = key_texts(s) + (f" ({s.note})" if s.note else "")
            table.setItem(row, 1, QTableWidgetItem(keys))
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        table.resizeRowsToContents()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        col = QVBoxLayout(self)
        col.addWidget(table)
        col.addWidget(buttons)
        self.table = table
        self.resize(560, 420)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
