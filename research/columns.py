"""The dataset's tables: every column with its type, the one place the writer (pyarrow),
the report (DuckDB) and Spark take them from (docs/research.md, "Codebook"). Imports
nothing, so that a Spark cluster needs only this, indicators.py and disclosure.py."""
from __future__ import annotations

SCHEMA_VERSION = 1
PARTITIONED = ("events", "spends")           # by month, in month=YYYY-MM folders
SNAPSHOTS = ("members", "tasks", "policies")  # one file each

# table -> ((column, type), ...); types: "int" (64-bit), "text", "bool"
TABLES = {
    "events": (("time_ms", "int"), ("height", "int"), ("position", "int"), ("kind", "text"),
               ("member", "text"), ("other", "text"), ("role", "text"), ("area", "text"),
               ("domain", "text"), ("task", "text"), ("cents", "int"), ("minutes", "int")),
    "spends": (("time_ms", "int"), ("height", "int"), ("position", "int"),
               ("payer", "text"), ("payer_role", "text"), ("payer_area", "text"),
               ("merchant", "text"), ("merchant_name", "text"), ("cents", "int")),
    "members": (("member", "text"), ("role", "text"), ("age_band", "text"), ("area", "text"),
                ("name", "text"), ("active", "bool"), ("first_activity_ms", "int"),
                ("last_activity_ms", "int")),
    "tasks": (("task", "text"), ("title", "text"), ("area", "text"), ("domain", "text"),
              ("reward", "int"), ("minutes", "int"), ("slots", "int"), ("deadline_ms", "int"),
              ("posted_ms", "int"), ("cancelled", "bool")),
    "policies": (("year", "int"), ("hourly_cap_21plus", "int"), ("hourly_cap_under21", "int"),
                 ("monthly_cap", "int"), ("yearly_cap", "int"), ("set_for_year", "bool")),
}
SQL_TYPES = {"int": "BIGINT", "text": "STRING", "bool": "BOOLEAN"}


def names(table: str) -> tuple[str, ...]:
    return tuple(name for name, _ in TABLES[table])


def sql_schema(table: str, with_month: bool = False) -> str:
    """`name TYPE, ...` as Spark's DDL takes it."""
    columns = list(TABLES[table]) + ([("month", "text")] if with_month else [])
    return ", ".join(f"{name} {SQL_TYPES[kind]}" for name, kind in columns)
