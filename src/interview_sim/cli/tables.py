"""Tables that stay whole: no column that names a model, a path or a figure is ever squeezed to `…`.

`print_whole(out, table, keys=1)` prints a rich table so that every cell is whole. When the output is not a
terminal (a pipe, a file) the table is printed at its natural width, however wide. On a terminal narrower than the
table, its columns after the first `keys` ones (the identity columns: a rank, a model, a run) are dealt out into
several tables, each repeating the identity columns, so that each fits; only a single column wider than the whole
terminal folds (at word boundaries where it has any).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Column, Table

__all__ = ["natural_width", "print_whole"]

_UNBOUNDED = 100_000


def natural_width(out: Console, table: Table) -> int:
    """The width `table` takes when nothing limits it."""
    from rich.measure import Measurement

    return Measurement.get(out, out.options.update(width=_UNBOUNDED), table).maximum


def print_whole(out: Console, table: Table, keys: int = 1) -> None:
    """Print `table` with every cell whole (see the module docstring); `keys`: how many leading identity columns
    to repeat in each part when the table is split."""
    for column in table.columns[:keys]:
        column.no_wrap = True
    for column in table.columns[keys:]:
        if column.overflow == "ellipsis":
            column.overflow = "fold"
    width = natural_width(out, table)
    if not out.is_terminal:
        saved = out.width
        out.width = max(saved, width)
        try:
            out.print(table)
        finally:
            out.width = saved
        return
    if width <= out.width or len(table.columns) <= keys + 1:
        out.print(table)
        return
    for part in _split(out, table, keys):
        out.print(part)


def _split(out: Console, table: Table, keys: int) -> list[Table]:
    """`table` as several tables of the same rows, each with the identity columns and as many others as fit."""
    identity, others = table.columns[:keys], table.columns[keys:]
    parts: list[list[Column]] = []
    for column in others:
        if parts and natural_width(out, _part(table, [*identity, *parts[-1], column], first=False)) <= out.width:
            parts[-1].append(column)
        else:
            parts.append([column])
    return [_part(table, [*identity, *cols], first=i == 0, last=i == len(parts) - 1) for i, cols in enumerate(parts)]


def _part(table: Table, columns: list[Column], *, first: bool, last: bool = True) -> Table:
    from rich.table import Table

    part = Table(
        title=table.title if first else None,
        title_justify=table.title_justify,
        caption=table.caption if last else None,
        caption_justify=table.caption_justify,
        box=table.box,
        show_header=table.show_header,
        show_lines=table.show_lines,
    )
    for column in columns:
        part.add_column(
            column.header,
            justify=column.justify,
            no_wrap=column.no_wrap,
            overflow=column.overflow,
            min_width=column.min_width,
            style=column.style,
            header_style=column.header_style,
        )
    for row in range(table.row_count):
        part.add_row(*(column._cells[row] for column in columns))
    return part
