"""The app's question before it re-points HubSpot's recording URL that another desk or the relay registered.

The runtime asks (``Runtime.take_over``) from a worker thread: the tunnel's follower or the pipeline's
registration step, when HubSpot holds a URL this desk did not register. ``asker(window)`` gives that callback:
it shows ``TakeOverDialog`` on the GUI thread, naming the URL registered now, and waits for the answer. Leave it
(the default button) keeps the other URL; Take over points HubSpot at this desk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import shiboken6
from PySide6.QtWidgets import QMessageBox, QWidget

from desktop_app.ui import tasks


class TakeOverDialog(QMessageBox):
    def __init__(self, parent: QWidget | None, current: str, wanted: str) -> None:
        super().__init__(parent)
        self.current, self.wanted = current, wanted
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("HubSpot's recording URL")
        self.setText(f"HubSpot's recording URL is registered now as {current}, which this desk did not register.")
        self.setInformativeText(
            "Another desk or the team's relay registered it. Pointing it at this desk "
            f"({wanted}) stops the recordings they serve from playing in HubSpot. Take it over?")
        self.take_over_button = self.addButton("Take over", QMessageBox.ButtonRole.DestructiveRole)
        self.leave_button = self.addButton("Leave it", QMessageBox.ButtonRole.RejectRole)
        self.setDefaultButton(self.leave_button)
        self.setEscapeButton(self.leave_button)

    def took_over(self) -> bool:
        return self.clickedButton() is self.take_over_button


def asker(parent: QWidget | None) -> Callable[[str, str], bool]:
    """The runtime's ``take_over`` callback: called from a worker thread, it asks on the GUI thread and
    blocks until answered. False when the window is gone before an answer (the URL is left as it is)."""
    tasks.post(lambda: None)  # the GUI thread's relay is made now, on the GUI thread

    def ask(current: str, wanted: str) -> bool:
        answer: list[bool] = []
        done = threading.Event()

        def show() -> None:
            owner = parent if parent is not None and shiboken6.isValid(parent) else None
            if parent is not None and owner is None:
                done.set()
                return
            dialog = TakeOverDialog(owner, current, wanted)

            def finished(_result: int) -> None:
                answer.append(dialog.took_over())
                done.set()
                dialog.deleteLater()

            dialog.finished.connect(finished)
            dialog.destroyed.connect(lambda *_: done.set())
            dialog.open()

        if tasks.on_gui_thread():  # not expected (the runtime asks from its threads): ask modally here
            dialog = TakeOverDialog(parent, current, wanted)
            dialog.exec()
            return dialog.took_over()
        tasks.post(show)
        done.wait()
        return bool(answer and answer[0])

    return ask
