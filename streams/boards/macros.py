"""Expand the grafana-clickhouse-datasource macros the way Grafana does, so every board and
alert query can run on the warehouse in tests and benchmarks.

Two stages, as in Grafana: the browser first replaces dashboard variables (``$var``,
``${var}``, ``${var:percentencode}``, formatted exactly as Grafana formats them: see
:func:`format_variable`) and ``$__conditionalAll``; the plugin's backend then
expands the time macros (``$__timeFilter``, ``$__timeInterval``, ``$__fromTime`` …; the same
SQL as pkg/macros/macros.go of the plugin). Alert rules run without a browser, so
``server_only`` rejects the first stage's macros.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

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


def _percentencode(value: str) -> str:
    """JavaScript's ``encodeURIComponent`` plus ``!'()*``: UTF-8 bytes, ``A-Za-z0-9-_.~`` kept."""
    return quote(value, safe="")


# Grafana's formatters, as in grafana/scenes packages/scenes/src/variables/interpolation/
# formatRegistry.ts (the interpolation Grafana 11 and 12 dashboards use):
#   raw:          formatter: (value) => String(value)           (an array's String() joins with ",")
#   csv:          isArray(value) ? value.join(',') : value
#   singlequote:  // escape single quotes with backslash
#                 const regExp = new RegExp(`'`, 'g');
#                 map(value, (v) => `'${replace(v, regExp, `\\'`)}'`).join(',')
#   sqlstring:    `'${replace(v, /'|"/g, (m) => SQL_ESCAPE_MAP[m])}'`,
#                 SQL_ESCAPE_MAP = {"'": "''", '"': '\\"'}
#   percentencode: isArray(value) ? encodeURIComponentStrict('{' + value.join(',') + '}')
#                                 : encodeURIComponentStrict(value)
#                 encodeURIComponentStrict = encodeURIComponent, then /[!'()*]/g → '%' + hex
# Without a format, the ClickHouse plugin (grafana/clickhouse-datasource src/data/CHDatasource.ts)
# passes its own to templateSrv.replace:
#   private format(value: any) {
#     if (Array.isArray(value)) { return `'${value.join("','")}'`; } return value; }
# None of them escapes a backslash: singlequote's output is not a safe ClickHouse string literal.
def _singlequote(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


def _sqlstring(value: str) -> str:
    return "'" + value.replace("'", "''").replace('"', '\\"') + "'"


def format_variable(value: str | Sequence[str], fmt: str | None) -> str:
    """A variable's value as Grafana writes it into the query with the format ``fmt``."""
    many = not isinstance(value, str)
    values = [value] if isinstance(value, str) else list(value)
    if fmt is None:
        return "'" + "','".join(values) + "'" if many else values[0]
    if fmt in ("raw", "csv"):
        return ",".join(values)
    if fmt == "singlequote":
        return ",".join(_singlequote(v) for v in values)
    if fmt == "sqlstring":
        return ",".join(_sqlstring(v) for v in values)
    if fmt == "percentencode":
        return _percentencode("{" + ",".join(values) + "}" if many else values[0])
    raise MacroError(f"variable format :{fmt} is not emulated here (see streams/boards/macros.py)")


def _value(name: str, context: QueryContext) -> str | Sequence[str]:
    if name not in context.variables:
        raise MacroError(f"dashboard variable ${name} has no value in this query context")
    return context.variables[name]


def _expand_variables(sql: str, context: QueryContext) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name.startswith("__"):
            return match.group(0)  # a macro, expanded later
        return format_variable(_value(name, context), match.group(2))

    return VARIABLE.sub(replace, sql)


def expand_browser(sql: str, context: QueryContext) -> str:
    """The browser's stage: ``$__conditionalAll`` and dashboard variables."""

    def conditional_all(name: str, args: list[str]) -> str:
        if name != "conditionalAll":
            return f"$__{name}" + (f"({', '.join(args)})" if args else "")
        condition, variable = _args("conditionalAll", args, 2)
        value = _value(variable.strip("${}"), context)
        # the plugin: `let value = key?.current.value.toString(); if (value === '' || value === '$__all')`
        text = value if isinstance(value, str) else ",".join(value)
        return "1=1" if text in ("", ALL) else condition

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
