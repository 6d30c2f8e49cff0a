"""Provinces' custom indicators: formulas checked when the file is read, computed per snapshot.

A formula is arithmetic over the library's numeric indicators (``refund_amount_12m /
(arpu_3m + 1)``) and the columns of the raw tables that hold one row per customer
(``usage.mms_count``, ``monthly_bills.vas_fee``, ``subscribers.number_level``), with
``+ - * / **``, comparisons (1 or 0), ``min``, ``max``, ``abs`` and ``log1p``. It is
parsed into a syntax tree and evaluated column-wise with NumPy; nothing is ``eval``-ed.
A division by zero gives an empty value.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from core import indicators as lib
from core.io import atomic_write_parquet
from features.build import offline_file
from features.schemas import TABLES, read_partition

#: Raw tables with one row per customer (per month): their columns can enter a formula.
FORMULA_TABLES = ("subscribers", "monthly_bills", "payments", "usage")
#: The longest formula, in characters. Real formulas are under 100; checked before parsing,
#: whose recursion a long chain of operators (5,000 unary minuses) would exhaust.
MAX_FORMULA_CHARS = 500
#: The most parts (numbers, names, operations, calls) in a formula.
MAX_FORMULA_PARTS = 200
#: The deepest nesting of operations in a formula: ``a + b + c`` nests 2 deep, each
#: parenthesis or function call one more. Evaluation recurses this deep.
MAX_FORMULA_DEPTH = 32
#: The largest number a formula may write, in absolute value: far above any amount or count
#: an indicator holds, and exact as a float (a 400-digit number overflows when computed).
MAX_FORMULA_NUMBER = 1e12
_FUNCTIONS: dict[str, Callable] = {"min": np.fmin, "max": np.fmax, "abs": np.abs, "log1p": np.log1p}
_BINARY = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
}
_COMPARE = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}


def _numeric_indicators() -> list[str]:
    return [i.id for i in lib.CATALOGUE if i.kind != "category"]


def _raw_column(table: str, column: str) -> str:
    if table not in FORMULA_TABLES:
        raise ValueError(
            f"table {table!r} cannot enter a formula (one row per customer needed); "
            f"tables: {', '.join(FORMULA_TABLES)}"
        )
    numeric = [c.name for c in TABLES[table].columns if c.kind in ("int", "float", "bool")]
    if column not in numeric:
        raise ValueError(
            f"{table}.{column} is not a numeric column of {table}; columns: {', '.join(numeric)}"
        )
    return f"{table}.{column}"


def _shown(formula: str, width: int = 60) -> str:
    """The formula for a message: its start when it is long."""
    formula = formula.strip()
    return repr(formula if len(formula) <= width else formula[:width] + "...")


def _parse(formula: str) -> ast.Expression:
    """The formula's syntax tree, or ValueError when it does not parse or exceeds a limit.

    The length is checked before parsing (Python's parser recurses on nesting), and the
    tree's size, depth and numbers without recursion, so no formula can exhaust the stack.
    """
    text = formula.strip()
    if len(text) > MAX_FORMULA_CHARS:
        raise ValueError(
            f"formula {_shown(text)} is {len(text):,} characters long; "
            f"a formula may have at most {MAX_FORMULA_CHARS} characters"
        )
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        raise ValueError(f"formula {_shown(text)} does not parse: {err.msg}") from None
    except ValueError as err:
        raise ValueError(f"formula {_shown(text)} does not parse: {err}") from None
    except (RecursionError, MemoryError):
        raise ValueError(
            f"formula {_shown(text)} is nested too deeply to read; "
            f"a formula may nest operations at most {MAX_FORMULA_DEPTH} deep"
        ) from None
    _check_limits(text, tree)
    return tree


def _check_limits(text: str, tree: ast.Expression) -> None:
    """Parts, nesting depth and numbers of a parsed formula within the limits (walked without recursion)."""
    parts = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        parts += 1
        if parts > MAX_FORMULA_PARTS:
            raise ValueError(
                f"formula {_shown(text)} has more than {MAX_FORMULA_PARTS} parts (numbers, names, "
                f"operations); a formula may have at most {MAX_FORMULA_PARTS}"
            )
        if depth > MAX_FORMULA_DEPTH:
            raise ValueError(
                f"formula {_shown(text)} nests operations more than {MAX_FORMULA_DEPTH} deep; "
                f"a formula may nest them at most {MAX_FORMULA_DEPTH} deep"
            )
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            # abs(x) <= limit is False for inf and nan, and exact (no overflow) for a huge int
            if not (isinstance(node.value, bool) or abs(node.value) <= MAX_FORMULA_NUMBER):
                written = ast.get_source_segment(text, node) or repr(node.value)
                shown = written if len(written) <= 24 else f"{written[:12]}... ({len(written)} characters)"
                raise ValueError(
                    f"number {shown} in formula {_shown(text)} is out of range; numbers in a formula "
                    f"must be at most {MAX_FORMULA_NUMBER:,.0f} in absolute value"
                )
        stack.extend(
            (child, depth + 1) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)
        )


def formula_names(formula: str) -> list[str]:
    """The indicators and raw columns a formula reads; ValueError on anything else."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Expression):
            visit(node.body)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
        ):
            pass
        elif isinstance(node, ast.Name):
            if node.id not in lib.BY_ID:
                raise ValueError(
                    f"unknown name {node.id!r} in formula; use numeric indicators "
                    f"({', '.join(_numeric_indicators())}) or table.column of {', '.join(FORMULA_TABLES)}"
                )
            if lib.BY_ID[node.id].kind == "category":
                raise ValueError(f"{node.id!r} is a category indicator; a formula needs numbers")
            names.append(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names.append(_raw_column(node.value.id, node.attr))
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            visit(node.left)
            visit(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            visit(node.operand)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            visit(node.left)
            visit(node.comparators[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
        ):
            expected = 1 if node.func.id in ("abs", "log1p") else 2
            if len(node.args) != expected:
                raise ValueError(f"{node.func.id}() takes {expected} argument(s)")
            for arg in node.args:
                visit(arg)
        else:
            raise ValueError(
                f"formula part {_shown(ast.unparse(node))} is not allowed; use numbers, indicators, "
                f"table.column, + - * / **, comparisons and {', '.join(_FUNCTIONS)}"
            )

    visit(_parse(formula))
    return list(dict.fromkeys(names))


def evaluate(formula: str, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """The formula's value per row; ``values`` maps each name of ``formula_names`` to a column."""

    def ev(node: ast.AST) -> np.ndarray | float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return np.asarray(values[node.id], dtype=float)
        if isinstance(node, ast.Attribute):
            return np.asarray(values[f"{node.value.id}.{node.attr}"], dtype=float)
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp):
            return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
        if isinstance(node, ast.Compare):
            return _COMPARE[type(node.ops[0])](ev(node.left), ev(node.comparators[0])).astype(float)
        if isinstance(node, ast.Call):
            return _FUNCTIONS[node.func.id](*(ev(a) for a in node.args))
        raise ValueError(f"formula part {_shown(ast.unparse(node))} is not allowed")

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.asarray(ev(_parse(formula)), dtype=float)
    out = np.where(np.isfinite(out), out, np.nan)
    n = len(next(iter(values.values()))) if values else 1
    return np.broadcast_to(out, (n,)).copy()


def custom_frame(
    config,
    indicators: pd.DataFrame,
    raw: Mapping[str, pd.DataFrame] | None = None,
    own_columns: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The province's custom indicators for the customers of ``indicators`` (row-aligned).

    ``raw`` holds the snapshot month's raw tables (for ``table.column`` names) and
    ``own_columns`` the province's own data (for custom indicators read from a column).
    """
    from core.errors import ConfigurationError

    out = pd.DataFrame({"msisdn": indicators["msisdn"].astype(str).to_numpy()})
    keys = pd.Index(out["msisdn"])
    for c in config.custom_indicators:
        if c.column is not None:
            if own_columns is None or c.column not in own_columns.columns:
                raise ConfigurationError(
                    f"custom indicator {c.id!r} of {config.province} is read from column {c.column!r} of the "
                    "province's own data, which this build does not have: load it with `telcoml byod`"
                )
            out[c.id] = own_columns[c.column].to_numpy()
            continue
        values = {}
        for name in formula_names(c.formula):
            if "." not in name:
                values[name] = pd.to_numeric(indicators[name], errors="coerce").to_numpy(
                    dtype=float, na_value=np.nan
                )
                continue
            table, column = name.split(".", 1)
            if raw is None or table not in raw:
                raise ConfigurationError(
                    f"custom indicator {c.id!r} of {config.province} reads raw table {table!r}, "
                    "which this data source does not have; use indicators instead"
                )
            frame = raw[table].drop_duplicates("msisdn", keep="last")
            aligned = pd.Series(frame[column].to_numpy(), index=frame["msisdn"].astype(str)).reindex(keys)
            values[name] = pd.to_numeric(aligned, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        result = evaluate(c.formula, values)
        out[c.id] = np.rint(result) if c.kind == "int" else result
    return out


def build_custom_indicators(config, raw_dir: Path, offline_dir: Path, months: Sequence[str]) -> int:
    """Compute a province's formula indicators for every month from the offline snapshots and raw tables.

    Written to ``<offline>/custom_<xx>/<XX>_<month>.parquet``, the layout of the other
    feature views. Returns the rows written.
    """
    from core.errors import DataQualityError
    from features.quality import check_indicators

    subject = f"custom_{config.province.lower()}"
    rows = 0
    if not config.custom_indicators:
        return 0
    subscribers = read_partition(raw_dir, "subscribers", config.province)
    for month in months:
        profile = pd.read_parquet(offline_file(offline_dir, "profile", config.province, month))
        frames = [profile] + [
            pd.read_parquet(offline_file(offline_dir, s, config.province, month)).drop(
                columns=["event_timestamp", "created_timestamp"]
            )
            for s in lib.SUBJECTS[1:]
        ]
        snapshot = frames[0]
        for frame in frames[1:]:
            snapshot = snapshot.merge(frame, on="msisdn", how="left")
        raw = {name: read_partition(raw_dir, name, config.province, month) for name in FORMULA_TABLES[1:]}
        raw["subscribers"] = subscribers
        custom = custom_frame(config, snapshot, raw)
        problems = [
            p for p in check_indicators(custom, f"{subject} {month}", config.custom) if p.severity == "reject"
        ]
        if problems:
            raise DataQualityError(problems)
        write_custom(
            custom,
            snapshot["event_timestamp"],
            offline_file(offline_dir, subject, config.province, month),
            config.custom,
        )
        rows += len(custom)
    return rows


def write_custom(custom: pd.DataFrame, event_timestamp: pd.Series, path: Path, indicators: list) -> None:
    """One custom view file: entity, timestamps and the custom indicators with their declared types."""
    frame = pd.DataFrame({"msisdn": custom["msisdn"].astype(str).to_numpy()})
    frame["event_timestamp"] = pd.to_datetime(event_timestamp.to_numpy(), utc=True).astype(
        "datetime64[us, UTC]"
    )
    frame["created_timestamp"] = pd.Series(pd.Timestamp.now(tz="UTC"), index=frame.index).astype(
        "datetime64[us, UTC]"
    )
    for ind in indicators:
        values = custom[ind.id]
        if ind.kind == "int":
            frame[ind.id] = pd.array(pd.to_numeric(values, errors="coerce").to_numpy(), dtype="Int64")
        elif ind.kind == "float":
            frame[ind.id] = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
        else:
            frame[ind.id] = values.astype(object).where(values.notna(), None).to_numpy()
    atomic_write_parquet(frame, path)


__all__ = [
    "formula_names",
    "evaluate",
    "custom_frame",
    "build_custom_indicators",
    "write_custom",
    "FORMULA_TABLES",
    "MAX_FORMULA_CHARS",
    "MAX_FORMULA_PARTS",
    "MAX_FORMULA_DEPTH",
    "MAX_FORMULA_NUMBER",
]
