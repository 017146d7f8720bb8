"""How every view prints: data as plain text, tables that keep ids whole, TSV when piped.

Names, subjects and ids come from real mail and CRM exports, so nothing taken from the warehouse
is ever parsed as rich markup (a Message-ID ``<[/]@acme.com>`` made rich raise ``MarkupError``)
or reaches the terminal with its escape sequences (an ANSI colour code in a CRM account name
recoloured the terminal). ``text()`` is the one door data goes through; ``Output`` is the one
printer every view uses, as a rich table, as TSV or (decided by the command) as JSON.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

Format = Literal["table", "tsv", "json"]

# CSI (colours, cursor moves), OSC (titles, hyperlinks; ended by BEL or ST) and two-byte escapes.
ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])")
# C0 and C1 controls, DEL, and the invisible bidirectional overrides that reorder what is shown.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def text(value: Any) -> str:
    """A warehouse value as one printable line: escape sequences and control characters removed
    (tabs and line breaks become spaces, so a TSV row stays one row)."""
    raw = "" if value is None else str(value)
    return CONTROL.sub(lambda m: " " if m[0] in "\t\n\r" else "", ESCAPE_SEQUENCE.sub("", raw))


@dataclass(frozen=True)
class Column:
    """A table column. ``whole`` columns (ids) are never cut or wrapped; when a table is wider
    than the terminal, columns with the highest ``drop`` go first (0: never dropped)."""

    header: str
    whole: bool = False
    drop: int = 0
    right: bool = False


def output_format(chosen: str | None, as_json: bool) -> Format:
    """``--json`` wins; else ``--format``; else a table on a terminal and TSV when piped."""
    if as_json:
        return "json"
    if chosen:
        return chosen  # type: ignore[return-value]
    return "table" if sys.stdout.isatty() else "tsv"


def _min_width(column: Column, values: list[str]) -> int:
    """The narrowest a column can be: its longest value when whole, else its longest word (in
    terminal cells: a CJK letter takes two)."""
    words = [cell_len(w) for v in [column.header, *values] for w in (v.split() if not column.whole else [v])]
    return max(words, default=1)


def _max_width(column: Column, values: list[str]) -> int:
    return max((cell_len(v) for v in [column.header, *values]), default=1)


BORDER = 3  # border and padding per column; one more closes the table


def fitting(columns: Sequence[Column], rows: list[list[str]], width: int) -> list[int]:
    """Indexes of the columns to show: drop the least important until every whole value fits
    and no word must be broken, then take back the important ones that still fit."""
    shown = list(range(len(columns)))
    mins = [_min_width(c, [r[i] for r in rows]) for i, c in enumerate(columns)]

    def needed() -> int:
        return sum(mins[i] + BORDER for i in shown) + 1

    droppable = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop)
    dropped = []
    for index in droppable:
        if needed() <= width:
            break
        shown.remove(index)
        dropped.append(index)
    for index in reversed(dropped):
        if needed() + mins[index] + BORDER <= width:
            shown = sorted([*shown, index])
    return shown


def column_widths(
    minimum: list[int], maximum: list[int], available: int, floor: list[int] | None = None
) -> list[int]:
    """Content widths that fit ``available``: the widest columns give way first, none below its
    minimum (so whole values stay whole and words unbroken when the minimums fit). When the
    minimums do not fit, columns shrink further down to ``floor`` (a whole column's floor is its
    minimum: a long word in a text column is folded, never an id)."""
    widths = [min(hi, max(lo, available)) for lo, hi in zip(minimum, maximum, strict=True)]
    excess = sum(widths) - available
    for limit in (minimum, floor or minimum):
        while excess > 0:
            shrinkable = [i for i, w in enumerate(widths) if w > limit[i]]
            if not shrinkable:
                break
            widest = max(shrinkable, key=lambda i: widths[i])
            others = [widths[i] for i in shrinkable if i != widest]
            step = max(1, min(excess, widths[widest] - max([limit[widest], *others])))
            widths[widest] -= step
            excess -= step
    return widths


class Output:
    """Prints a view's lines and tables in one format; data passes through ``text()``."""

    def __init__(self, fmt: Format = "table", wide: bool = False, console: Console | None = None) -> None:
        self.format = fmt
        self.wide = wide
        self.console = console or Console(soft_wrap=wide)
        self._tables = 0

    def line(self, *parts: str | tuple[str, str]) -> None:
        """One line of text; a part given as (text, style) is styled in the table format."""
        pieces = [(text(p), "") if isinstance(p, str) else (text(p[0]), p[1]) for p in parts]
        if self.format == "tsv":
            self.console.file.write("".join(t for t, _ in pieces) + "\n")
        else:
            self.console.print(Text.assemble(*pieces), soft_wrap=self.wide)

    def table(self, columns: Sequence[Column], rows: Sequence[Sequence[Any]], title: str = "") -> None:
        cleaned = [[text(v) for v in row] for row in rows]
        if self.format == "tsv":
            out = self.console.file
            if self._tables:
                out.write("\n")
            out.write("\t".join(text(c.header) for c in columns) + "\n")
            out.writelines("\t".join(row) + "\n" for row in cleaned)
            self._tables += 1
            return
        width = 10**6 if self.wide else self.console.width
        shown = fitting(columns, cleaned, width)
        minimum = [_min_width(columns[i], [r[i] for r in cleaned]) for i in shown]
        maximum = [_max_width(columns[i], [r[i] for r in cleaned]) for i in shown]
        # a text column may fold a long word (down to its header's width, at least 8 cells)
        floor = [
            m if columns[i].whole else min(m, max(8, cell_len(text(columns[i].header))))
            for i, m in zip(shown, minimum, strict=True)
        ]
        available = width - BORDER * len(shown) - 1
        widths = maximum if self.wide else column_widths(minimum, maximum, available, floor)
        table = Table(title=text(title) or None, title_justify="left", expand=False)
        for i, w in zip(shown, widths, strict=True):
            c = columns[i]
            table.add_column(
                Text(text(c.header)),
                justify="right" if c.right else "left",
                width=w,
                no_wrap=c.whole,
                overflow="fold",
            )
        for row in cleaned:
            table.add_row(*(Text(row[i]) for i in shown))
        dropped = [text(columns[i].header) for i in range(len(columns)) if i not in shown]
        if self.wide:  # rich never draws wider than its console: widen it for this table
            narrow, self.console.width = self.console.width, sum(widths) + BORDER * len(shown) + 1
            self.console.print(table)
            self.console.width = narrow
        else:
            self.console.print(table)
        if dropped:
            self.console.print(
                Text(
                    f"(not shown at {width} columns: {', '.join(dropped)}; --wide or --format tsv shows all)"
                ),
                style="dim",
            )
        self._tables += 1
