"""Markdown rendering of result tables (no extra dependency)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def format_cell(value: object, digits: int = 3) -> str:
    """Floats to ``digits`` places (significant digits when tiny); NaN as an empty cell."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (float, np.floating)):
        return str(value)
    if np.isnan(value):
        return ""
    small = value != 0 and abs(value) < 10.0 ** -digits
    return f"{value:.{digits}g}" if small else f"{value:.{digits}f}"


def markdown_table(table: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table; ``_(none)_`` for an empty table."""
    if table.empty:
        return "_(none)_"
    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(format_cell(v, digits) for v in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines)
