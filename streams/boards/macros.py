"""Expand the grafana-clickhouse-datasource macros the way Grafana does, so every board and
alert query can run on the warehouse in tests and benchmarks.

Two stages, as in Grafana: the browser first replaces dashboard variables (``$var``,
``${var}``, ``${var:singlequote}``) and ``$__conditionalAll``; the plugin's backend then
expands the time macros (``$__timeFilter``, ``$__timeInterval``, ``$__fromTime`` …; the same
SQL as pkg/macros/macros.go of the plugin). Alert rules run without a browser, so
``server_only`` rejects the first stage's macros.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

ALL = "$__all"  # the value Grafana gives a variable when "All" is selected


class MacroError(ValueError):
    """A query uses a macro or variable that cannot be expanded; the message names it."""


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it runs a query: time range, interval and variable values."""

    time_from: datetime
    time_to: datetime
    interval_s: int = 60
    variables: Mapping[str, str | Sequence[str]] = field(default_factory=dict)


def _datetime(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _datetime64(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _date(t: datetime) -> str:
    return f"toDate('{t.astimezone(UTC):%Y-%m-%d}')"


def _between(column: str, low: str, high: str) -> str:
    return f"{column} >= {low} AND {column} <= {high}"


def _args(name: str, args: list[str], count: int) -> list[str]:
    if len(args) != count:
        raise MacroError(f"$__{name} expects {count} argument(s), got {len(args)}: {args}")
    return args


SERVER_MACROS: dict[str, Callable[[QueryContext, list[str]], str]] = {
    "fromTime": lambda c, a: _datetime(c.time_from),
    "toTime": lambda c, a: _datetime(c.time_to),
    "fromTime_ms": lambda c, a: _datetime64(c.time_from),
    "toTime_ms": lambda c, a: _datetime64(c.time_to),
    "timeFilter": lambda c, a: _between(
        _args("timeFilter", a, 1)[0], _datetime(c.time_from), _datetime(c.time_to)
    ),
    "timeFilter_ms": lambda c, a: _between(
        _args("timeFilter_ms", a, 1)[0], _datetime64(c.time_from), _datetime64(c.time_to)
    ),
    "dateFilter": lambda c, a: _between(_args("dateFilter", a, 1)[0], _date(c.time_from), _date(c.time_to)),
    "timeInterval": lambda c, a: (
        f"toStartOfInterval(toDateTime({_args('timeInterval', a, 1)[0]}), "
        f"INTERVAL {max(c.interval_s, 1)} second)"
    ),
    "interval_s": lambda c, a: str(max(c.interval_s, 1)),
}

MACRO = re.compile(r"\$__(\w+)")
VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


def _call(sql: str, start: int) -> tuple[list[str], int]:
    """The arguments of the call whose ``(`` is at ``start`` (top-level commas), and its end."""
    depth = 0
    args: list[str] = []
    current: list[str] = []
    for i in range(start, len(sql)):
        ch = sql[i]
        if ch == "(":
            depth += 1
            if depth == 1:
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return [a for a in args if a], i + 1
        elif ch == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    raise MacroError(f"unbalanced parentheses after position {start} in: {sql[:200]}")


def _expand_macros(sql: str, expand: Callable[[str, list[str]], str]) -> str:
    out, pos = [], 0
    for match in MACRO.finditer(sql):
        if match.start() < pos:
            continue
        name = match.group(1)
        end = match.end()
        args: list[str] = []
        if end < len(sql) and sql[end] == "(":
            args, end = _call(sql, end)
        out.append(sql[pos : match.start()])
        out.append(expand(name, args))
        pos = end
    out.append(sql[pos:])
    return "".join(out)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _values(name: str, context: QueryContext) -> list[str]:
    if name not in context.variables:
        raise MacroError(f"dashboard variable ${name} has no value in this query context")
    value = context.variables[name]
    return [value] if isinstance(value, str) else list(value)


def _expand_variables(sql: str, context: QueryContext) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name.startswith("__"):
            return match.group(0)  # a macro, expanded later
        values = _values(name, context)
        fmt = match.group(2)
        if fmt == "singlequote":
            return ",".join(_quote(v) for v in values)
        if fmt not in (None, "raw", "csv"):
            raise MacroError(f"variable format ${{{name}:{fmt}}} is not supported here")
        return ",".join(values)

    return VARIABLE.sub(replace, sql)


def expand_browser(sql: str, context: QueryContext) -> str:
    """The browser's stage: ``$__conditionalAll`` and dashboard variables."""

    def conditional_all(name: str, args: list[str]) -> str:
        if name != "conditionalAll":
            return f"$__{name}" + (f"({', '.join(args)})" if args else "")
        condition, variable = _args("conditionalAll", args, 2)
        values = _values(variable.strip("${}"), context)
        return "1=1" if ALL in values else condition

    return _expand_variables(_expand_macros(sql, conditional_all), context)


def expand_server(sql: str, context: QueryContext) -> str:
    """The plugin backend's stage: time range and interval macros."""

    def server(name: str, args: list[str]) -> str:
        if name not in SERVER_MACROS:
            raise MacroError(f"$__{name} is not a server-side macro of the ClickHouse datasource")
        return SERVER_MACROS[name](context, args)

    return _expand_macros(sql, server)


def expand(sql: str, context: QueryContext, server_only: bool = False) -> str:
    """SQL as ClickHouse receives it. ``server_only`` (alert rules): no browser stage, so a
    dashboard variable or ``$__conditionalAll`` is an error instead of being replaced."""
    if server_only:
        leftover = [
            m.group(0) for m in VARIABLE.finditer(sql) if not (m.group(1) or m.group(3)).startswith("__")
        ]
        if leftover or "$__conditionalAll" in sql:
            raise MacroError(
                f"alert SQL may use only server-side macros; found {leftover or ['$__conditionalAll']}"
            )
    else:
        sql = expand_browser(sql, context)
    return expand_server(sql, context)
