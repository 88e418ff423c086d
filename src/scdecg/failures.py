"""Per-record failure bookkeeping: nothing is dropped without a logged, counted reason."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class FailureLog:
    """Collects ``(record, reason)`` pairs and summarises them by reason."""

    step: str
    rows: list[dict] = field(default_factory=list)

    def add(self, record: object, reason: str, **extra: object) -> None:
        self.rows.append({"record": record, "reason": reason, **extra})

    def __len__(self) -> int:
        return len(self.rows)

    def counts(self) -> Counter:
        return Counter(row["reason"] for row in self.rows)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["record", "reason"] if not self.rows else None)

    def summary(self, total: int | None = None) -> str:
        """Human-readable lines: how many records failed, by reason."""
        head = f"[{self.step}] {len(self.rows)} record(s) excluded or failed"
        if total is not None:
            head += f" of {total}"
        lines = [head]
        for reason, n in sorted(self.counts().items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {n:>7}  {reason}")
        return "\n".join(lines)
