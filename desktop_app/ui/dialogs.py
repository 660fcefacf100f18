"""Small dialogs."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QWidget


class NewContactDialog(QDialog):
    def __init__(self, parent: QWidget | None, *, number: str, guess: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Create contact")
        self.firstname = QLineEdit()
        self.lastname = QLineEdit()
        self.email = QLineEdit()
        if "@" in guess:
            self.email.setText(guess.strip())
        elif guess.strip() and not any(ch.isdigit() for ch in guess):
            first, _, last = guess.strip().partition(" ")
            self.firstname.setText(first)
            self.lastname.setText(last)
        form = QFormLayout(self)
        form.addRow("Phone", QLabel(number or "(none: the call's number is not valid yet)"))
        form.addRow("&First name", self.firstname)
        form.addRow("&Last name", self.lastname)
        form.addRow("&Email", self.email)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> dict[str, str]:
        return {"firstname": self.firstname.text().strip(), "lastname": self.lastname.text().strip(),
                "email": self.email.text().strip()}
