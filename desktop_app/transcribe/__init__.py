"""Transcripts Call Relay makes itself when HubSpot won't (issue 20): the shared types.

``engine`` turns a recording into a ``Transcript`` (one speaker per channel, as HubSpot does it);
``desktop_app.sync.transcripts`` posts one to HubSpot's third-party transcripts API, exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Utterance:
    """One speaker's stretch of speech. ``channel`` is 1-based: 1 the caller, 2 the recipient."""

    channel: int
    start_ms: int
    end_ms: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "start_ms": self.start_ms, "end_ms": self.end_ms, "text": self.text}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Utterance:
        return cls(int(data["channel"]), int(data["start_ms"]), int(data["end_ms"]), str(data["text"]))


@dataclass(frozen=True)
class Transcript:
    """A call's words in time order. ``language``: an ISO 639-1 code (detected or set)."""

    language: str
    utterances: tuple[Utterance, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"language": self.language, "utterances": [u.to_dict() for u in self.utterances]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        return cls(str(data["language"]), tuple(Utterance.from_dict(u) for u in data.get("utterances", ())))
