"""The call details form: prefilled from the file, validated where the agent types.

Numbers are checked with ``phonenumbers`` (default region from the settings) and kept as E.164;
each invalid field is marked where it is, with the reason beneath it. The contact is searched as
the agent types (debounced, in a worker), the contact matching the call's number first, with
"Create contact" when none fits. ``validityChanged`` tells the page whether the details can go.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QDateTime, Qt, QTime, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QDateTimeEdit,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from desktop_app import phones
from desktop_app.hubspot.endpoints import CallDetails
from desktop_app.ui import tasks
from desktop_app.ui.contacts import Found, find_contacts

CALL_STATUSES = ("COMPLETED", "BUSY", "NO_ANSWER", "FAILED", "CANCELED")
DEBOUNCE_MS = 300
NO_OWNER = "(no owner)"
# the field each error belongs to, as its label reads (the "Not yet:" line names it)
FIELD_NAMES = {"owner": "Owner", "timestamp": "Time", "from_number": "From", "to_number": "To", "contact": "Contact"}


class FieldError(QLabel):
    """The reason under a field; hidden when the field is fine."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("fieldError")
        self.setWordWrap(True)
        self.setStyleSheet("color: #c0392b;")
        self.hide()


def mark(widget: QWidget, label: FieldError, reason: str | None) -> None:
    """Show ``reason`` under the field and outline it; clear both when None. Does nothing when unchanged
    (restyling a widget is the costly part, and this runs on every keystroke)."""
    if widget.property("invalid") == bool(reason) and label.text() == (reason or ""):
        return
    widget.setProperty("invalid", bool(reason))
    widget.setStyleSheet("border: 1px solid #c0392b;" if reason else "")
    widget.setToolTip(reason or "")
    widget.setAccessibleDescription(reason or "")
    label.setText(reason or "")
    label.setVisible(bool(reason))


class OneStopDateTimeEdit(QDateTimeEdit):
    """A date/time editor that Tab leaves (one stop): its parts are walked with Left/Right, set with Up/Down."""

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: N802, A002 - Qt's names
        return QWidget.focusNextPrevChild(self, next)


class OneStopTimeEdit(QTimeEdit):
    """A duration editor that Tab leaves (one stop), as ``OneStopDateTimeEdit``."""

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: N802, A002 - Qt's names
        return QWidget.focusNextPrevChild(self, next)


class CallDetailsForm(QWidget):
    validityChanged = Signal(bool)
    errorsChanged = Signal()  # the reasons changed (even when the form stays invalid)
    contactsShown = Signal()  # after a search's results are listed (tests wait on it)

    def __init__(self, parent: QWidget | None = None, *, region: str = "US") -> None:
        super().__init__(parent)
        self.region = region
        self.client: Any = None
        self._contact: Found | None = None
        self._search_task: tasks.Task | None = None
        self._valid = False
        self._errors: dict[str, str] = {}
        self._owners_known = False  # the owners list came from HubSpot: an owner is one of them
        self.seats: dict[str, bool] = {}  # owner id -> has a paid Sales/Service seat (where known)

        self.title = QLineEdit(placeholderText="e.g. Follow-up on order 1042")
        self.owner = QComboBox(editable=True)
        self.owner.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        completer = QCompleter(self.owner.model(), self.owner)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.owner.setCompleter(completer)
        self.owner.setPlaceholderText("Type to search owners")
        self.timestamp = OneStopDateTimeEdit()
        self.timestamp.setCalendarPopup(True)
        self.timestamp.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
        self.timestamp.setDateTime(QDateTime.currentDateTime())
        self.duration = OneStopTimeEdit()
        self.duration.setDisplayFormat("HH:mm:ss")
        self.from_number = QLineEdit(placeholderText="+1 202 555 0142")
        self.to_number = QLineEdit(placeholderText="+1 202 555 0199")
        self.direction = QComboBox()
        self.direction.addItem("Outbound", "OUTBOUND")
        self.direction.addItem("Inbound", "INBOUND")
        self.status = QComboBox()
        for s in CALL_STATUSES:
            self.status.addItem(s.replace("_", " ").capitalize(), s)
        self.outcome = QComboBox()
        self.outcome.addItem("(no outcome)", "")
        self.notes = QPlainTextEdit(placeholderText="Notes for the call's timeline entry")
        self.notes.setTabChangesFocus(True)
        self.notes.setFixedHeight(64)

        self.contact_search = QLineEdit(placeholderText="Search contacts by phone, email or name")
        self.contact_search.setClearButtonEnabled(True)
        self.contact_results = QListWidget()
        self.contact_results.setFixedHeight(84)
        self.contact_results.setAccessibleName("Contacts found")
        self.contact_results.setWordWrap(True)
        self.contact_results.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.contact_chosen = QLabel("No contact chosen")
        self.create_contact = QPushButton("Create contact…")
        self.create_contact.setEnabled(False)

        self.errors_ = {name: FieldError() for name in ("owner", "from_number", "to_number", "contact", "timestamp")}
        self.owner_note = QLabel()  # an owner without a paid seat: a warning, not a blocker
        self.owner_note.setObjectName("ownerNote")
        self.owner_note.setWordWrap(True)
        self.owner_note.setStyleSheet("color: #a04000;")
        self.owner_note.hide()
        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._debounce.timeout.connect(self._search_now)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("&Title", self.title)
        owner_box = self._stack(self.owner, self.errors_["owner"])
        owner_box.addWidget(self.owner_note)
        form.addRow(self._label("O&wner", self.owner), owner_box)
        form.addRow(self._label("Ti&me", self.timestamp), self._stack(self.timestamp, self.errors_["timestamp"]))
        form.addRow("D&uration", self.duration)
        form.addRow(self._label("&From", self.from_number),
                    self._stack(self.from_number, self.errors_["from_number"]))
        form.addRow(self._label("T&o", self.to_number), self._stack(self.to_number, self.errors_["to_number"]))
        form.addRow("D&irection", self.direction)
        form.addRow("&Status", self.status)
        form.addRow("O&utcome", self.outcome)
        contact_row = QHBoxLayout()
        contact_row.addWidget(self.contact_chosen, 1)
        contact_row.addWidget(self.create_contact)
        contact_box = QVBoxLayout()
        contact_box.addWidget(self.contact_search)
        contact_box.addWidget(self.contact_results)
        contact_box.addLayout(contact_row)
        contact_box.addWidget(self.errors_["contact"])
        form.addRow(self._label("&Contact", self.contact_search), contact_box)
        form.addRow("&Notes", self.notes)
        self.setLayout(form)
        # the names a screen reader says, on each field itself (a field laid out with its error has no
        # label the form layout knows)
        for named, name in ((self.title, "Title"), (self.owner, "Owner"), (self.timestamp, "Time"),
                            (self.duration, "Duration"), (self.from_number, "From"), (self.to_number, "To"),
                            (self.direction, "Direction"), (self.status, "Status"), (self.outcome, "Outcome"),
                            (self.contact_search, "Contact search"), (self.notes, "Notes")):
            named.setAccessibleName(name)

        self.owner.currentTextChanged.connect(lambda _t: self.revalidate())
        self.from_number.textChanged.connect(self.revalidate)
        self.to_number.textChanged.connect(self.revalidate)
        self.direction.currentIndexChanged.connect(self._party_changed)
        self.from_number.editingFinished.connect(lambda: self._normalise(self.from_number))
        self.to_number.editingFinished.connect(lambda: self._normalise(self.to_number))
        self.from_number.editingFinished.connect(self._party_changed)
        self.to_number.editingFinished.connect(self._party_changed)
        self.contact_search.textEdited.connect(lambda _t: self._debounce.start())
        self.contact_results.itemActivated.connect(self._choose)
        self.contact_results.itemClicked.connect(self._choose)
        self.create_contact.clicked.connect(self._create_contact_dialog)
        # Tab in reading order (the contact before the notes, though made after them), one stop a field
        chain = [self.title, self.owner, self.timestamp, self.duration, self.from_number, self.to_number,
                 self.direction, self.status, self.outcome, self.contact_search, self.contact_results,
                 self.create_contact, self.notes]
        for first, second in zip(chain, chain[1:], strict=False):
            self.setTabOrder(first, second)

    @staticmethod
    def _label(text: str, buddy: QWidget) -> QLabel:
        label = QLabel(text)
        label.setBuddy(buddy)  # Alt+letter moves to the field, and the & is not shown
        return label

    @staticmethod
    def _stack(field: QWidget, error: QLabel) -> QVBoxLayout:
        box = QVBoxLayout()
        box.setSpacing(2)
        box.addWidget(field)
        box.addWidget(error)
        return box

    # -- data in ---------------------------------------------------------------------------------
    def set_client(self, client: Any, region: str) -> None:
        self.client, self.region = client, region
        self.create_contact.setEnabled(client is not None)
        self.revalidate()
        self._party_changed()  # look up the contact for the number the file already gave

    def set_owners(self, owners: list[tuple[str, str]], default: str | None = None) -> None:
        current = self.owner_id() or default
        typed = self.owner.currentText() if not current else ""
        self.owner.blockSignals(True)
        self.owner.clear()
        self.owner.addItem(NO_OWNER, "")
        for oid, name in owners:
            self.owner.addItem(name, oid)
        self._owners_known = bool(owners)
        i = self.owner.findData(current) if current else -1
        self.owner.setCurrentIndex(max(i, 0))
        if i < 0 and typed and typed != NO_OWNER:
            self.owner.setEditText(typed)  # what the agent typed stays, and is judged against the list
        self.owner.blockSignals(False)
        self.revalidate()

    def set_seats(self, seats: dict[str, bool]) -> None:
        """Which owners have a paid Sales/Service seat (only calls of those are transcribed)."""
        self.seats = dict(seats)
        self.revalidate()

    def set_outcomes(self, outcomes: list[tuple[str, str]]) -> None:
        self.outcome.clear()
        self.outcome.addItem("(no outcome)", "")
        for oid, label in outcomes:
            self.outcome.addItem(label, oid)

    def prefill(self, *, start: str | None = None, duration_s: float | None = None,
                from_number: str | None = None, to_number: str | None = None,
                direction: str | None = None, title: str | None = None) -> None:
        """Fill what the file told (PBX file name, duration): only fields the agent has not typed in."""
        if start:
            moment = dt.datetime.fromisoformat(start)
            if moment.tzinfo is None:
                moment = moment.astimezone()  # the PBX wrote local time
            self.timestamp.setDateTime(QDateTime.fromSecsSinceEpoch(int(moment.timestamp())))
        if duration_s is not None:
            self.duration.setTime(QTime(0, 0).addSecs(int(round(duration_s))))
        if from_number and not self.from_number.text():
            self.from_number.setText(from_number)
            self._normalise(self.from_number)
        if to_number and not self.to_number.text():
            self.to_number.setText(to_number)
            self._normalise(self.to_number)
        if direction:
            i = self.direction.findData(direction.upper())
            if i >= 0:
                self.direction.setCurrentIndex(i)
        if title and not self.title.text():
            self.title.setText(title)
        self.revalidate()
        self._party_changed()

    # -- validation ------------------------------------------------------------------------------
    def _normalise(self, field: QLineEdit) -> None:
        e164, _reason = phones.check(field.text(), self.region)
        if e164 and field.text() != e164:
            field.setText(e164)

    def errors(self) -> dict[str, str]:
        out: dict[str, str] = {}
        typed = self.owner.currentText().strip()
        if typed and typed != NO_OWNER and not self.owner_id():
            out["owner"] = f"“{typed}” is not one of the account's HubSpot users: pick a name from the list."
        for name, field in (("from_number", self.from_number), ("to_number", self.to_number)):
            _e164, reason = phones.check(field.text(), self.region)
            if reason:
                out[name] = reason
        if self._contact is None:
            out["contact"] = "Choose the contact the call belongs to (search above), or create one."
        if self.timestamp.dateTime().toSecsSinceEpoch() > QDateTime.currentDateTime().toSecsSinceEpoch() + 300:
            out["timestamp"] = "The call cannot have taken place in the future."
        return out

    def owner_warning(self) -> str:
        """An owner HubSpot will not transcribe for (no paid seat), said before the upload."""
        oid = self.owner_id()
        if self._owners_known and not oid and self.owner.currentText().strip() in ("", NO_OWNER):
            return "No owner: HubSpot logs the call but transcribes only calls that have an owner."
        if oid and self.seats.get(oid) is False:
            return (f"{self.owner.currentText()} has no paid Sales or Service seat: HubSpot logs the call but "
                    f"will not transcribe it. Choose an owner with a seat for a transcript.")
        return ""

    def revalidate(self) -> bool:
        errs = self.errors()
        mark(self.owner, self.errors_["owner"], errs.get("owner"))
        warning = self.owner_warning()
        if self.owner_note.text() != warning:
            self.owner_note.setText(warning)
        self.owner_note.setVisible(bool(warning))
        mark(self.from_number, self.errors_["from_number"], errs.get("from_number"))
        mark(self.to_number, self.errors_["to_number"], errs.get("to_number"))
        mark(self.contact_search, self.errors_["contact"], errs.get("contact"))
        mark(self.timestamp, self.errors_["timestamp"], errs.get("timestamp"))
        valid = not errs
        if valid != self._valid:
            self._valid = valid
            self.validityChanged.emit(valid)
        if errs != self._errors:
            self._errors = errs
            self.errorsChanged.emit()
        return valid

    @property
    def valid(self) -> bool:
        return self._valid

    # -- contacts --------------------------------------------------------------------------------
    def party_number(self) -> str | None:
        """The other party's number in E.164: the recipient on an outbound call, the caller on an inbound one."""
        field = self.to_number if self.direction.currentData() == "OUTBOUND" else self.from_number
        e164, _ = phones.check(field.text(), self.region)
        return e164

    def _party_changed(self) -> None:
        if self.client is not None and self._contact is None:
            self._debounce.start()

    def _search_now(self) -> None:
        if self.client is None:
            return
        if self._search_task is not None:
            self._search_task.cancel()
        self._search_task = tasks.run_task(
            find_contacts, self.client, self.contact_search.text(), self.party_number(), self.region,
            owner=self, name="contact-search", on_result=self._show_contacts, on_error=self._search_failed)

    def _show_contacts(self, found: list[Found]) -> None:
        self.contact_results.clear()
        for f in found:
            item = QListWidgetItem(f.label)
            item.setData(Qt.ItemDataRole.UserRole, f)
            self.contact_results.addItem(item)
        if not found:
            item = QListWidgetItem("No contact found — use “Create contact…”")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.contact_results.addItem(item)
        elif self._contact is None and found[0].why == "phone" and \
                sum(1 for f in found if f.why == "phone") == 1:
            self.choose_contact(found[0])  # one contact has the call's number: take it
        self.contactsShown.emit()

    def _search_failed(self, exc: BaseException) -> None:
        self.contact_results.clear()
        item = QListWidgetItem(f"Search failed: {exc}")
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        self.contact_results.addItem(item)
        self.contactsShown.emit()

    def _choose(self, item: QListWidgetItem) -> None:
        found = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(found, Found):
            self.choose_contact(found)

    def choose_contact(self, found: Found | None) -> None:
        self._contact = found
        self.contact_chosen.setText(f"Contact: {found.name or found.email or found.id}" if found
                                    else "No contact chosen")
        self.revalidate()

    def contact(self) -> Found | None:
        return self._contact

    def create_contact_now(self, firstname: str = "", lastname: str = "", email: str = "", *,
                           on_done: Callable[[Found | None], None] | None = None) -> tasks.Task | None:
        """Create a contact with the call's number (in a worker) and choose it."""
        if self.client is None:
            return None
        number = self.party_number()

        def create() -> Found:
            c = self.client.create_contact(firstname=firstname or None, lastname=lastname or None,
                                           email=email or None, phone=number, region=self.region)
            return Found(str(c.id), c.name, c.email or "", number or "", "search")

        def done(found: Found) -> None:
            self.choose_contact(found)
            if on_done:
                on_done(found)

        def failed(exc: BaseException) -> None:
            mark(self.contact_search, self.errors_["contact"], f"The contact could not be created: {exc}")
            if on_done:
                on_done(None)

        return tasks.run_task(create, owner=self, name="create-contact", on_result=done, on_error=failed)

    def _create_contact_dialog(self) -> None:
        from desktop_app.ui.dialogs import NewContactDialog

        dialog = NewContactDialog(self, number=self.party_number() or "", guess=self.contact_search.text())
        if dialog.exec():
            v = dialog.values()
            self.create_contact_now(v["firstname"], v["lastname"], v["email"])

    # -- data out --------------------------------------------------------------------------------
    def owner_id(self) -> str:
        """The chosen owner's id: the text shown must be an owner's whole name (any case), never a part
        of one, whatever item the list last had current."""
        i = self.owner.findText(self.owner.currentText().strip(), Qt.MatchFlag.MatchFixedString)
        return str(self.owner.itemData(i) or "") if i >= 0 else ""

    def details(self) -> CallDetails:
        from_e164, _ = phones.check(self.from_number.text(), self.region)
        to_e164, _ = phones.check(self.to_number.text(), self.region)
        moment = dt.datetime.fromtimestamp(self.timestamp.dateTime().toSecsSinceEpoch(), dt.timezone.utc)
        t = self.duration.time()
        return CallDetails(
            title=self.title.text().strip(),
            timestamp=moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
            duration_ms=1000 * (t.hour() * 3600 + t.minute() * 60 + t.second()),
            from_number=from_e164 or "", to_number=to_e164 or "",
            direction=str(self.direction.currentData()), status=str(self.status.currentData()),
            disposition=str(self.outcome.currentData() or ""), owner_id=self.owner_id(),
            notes=self.notes.toPlainText().strip(), contact_id=self._contact.id if self._contact else "",
        )
