"""What every attack class returns, and the helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Result:
    """``tries`` attempts were made; each entry of ``failures`` says in one line what went wrong."""

    name: str
    tries: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.failures.append(what)

    def line(self) -> str:
        return f"{self.name}: {self.tries} tries, {len(self.failures)} failures"
