"""The Upload page's queue and its unsent drafts, kept across restarts (Qt-free).

One small JSON file in the data directory (``paths.drafts_file``): the recordings queued, in order,
and for each the call details typed for it and not yet submitted. It is written atomically (a
temporary file, then a rename), so a crash leaves the old queue or the new one, never half of one.
A damaged file is reported in one sentence and ignored (the queue starts empty); it is never fatal.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop_app import paths
from desktop_app.errors import UserError

VERSION = 1
_lock = threading.Lock()  # saves from two workers never interleave


class DraftsError(UserError):
    """The drafts file cannot be written (the message names it and says what to do)."""


@dataclass
class Draft:
    path: str  # the recording as the agent added it
    fields: dict[str, Any] = field(default_factory=dict)  # the call details typed for it (strings, numbers)


def load(path: Path | None = None) -> tuple[list[Draft], str]:
    """The saved queue, and "" or one sentence saying why it could not be read (then the queue is empty)."""
    path = path or paths.drafts_file()
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], ""
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it is not text"
        return [], f"The saved queue {path} could not be read ({reason}), so the queue starts empty."
    try:
        data = json.loads(raw)
        items = data["queue"] if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ValueError("no queue in it")
        drafts = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not item["path"]:
                raise ValueError("an entry without a recording")
            fields = item.get("fields") or {}
            if not isinstance(fields, dict):
                raise ValueError("an entry's details are not a mapping")
            drafts.append(Draft(item["path"], {str(k): v for k, v in fields.items()}))
    except (ValueError, KeyError, TypeError):
        return [], f"The saved queue {path} is damaged and was ignored, so the queue starts empty."
    return drafts, ""


def save(drafts: list[Draft], path: Path | None = None) -> None:
    """Write the queue atomically; ``DraftsError`` (one sentence) when it cannot be written."""
    path = path or paths.drafts_file()
    text = json.dumps({"version": VERSION, "queue": [{"path": d.path, "fields": d.fields} for d in drafts]},
                      indent=2, sort_keys=True) + "\n"
    with _lock:
        tmp = ""
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".drafts-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            if tmp:
                Path(tmp).unlink(missing_ok=True)
            raise DraftsError(f"The queue could not be saved to {path} ({exc.strerror or exc}): free some space "
                              f"or make the data directory writable; the queue on screen is unchanged.") from None
