#!/usr/bin/env python3
"""Reads the parquet reports of one run back with DuckDB and pyarrow (tools other than the
writer) and checks them against the CSV reports: decimal, date and list types, and the same
values row by row.

Usage: python3 tests/bi/read_back.py OUT_DIR RUN_DATE   (exit 1 listing the problems)
"""
import csv, sys
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

out, run_date = sys.argv[1], sys.argv[2]
REPORTS = ["eligibility", "earnings", "unearned", "payouts", "dashboard", "rejects"]
DECIMALS = {
    "transaction_amount": 4, "usd_rate": 8, "transaction_amount_usd": 2, "earning_rate": 8,
    "earning_amount": 4, "earning_amount_usd": 2,
}
DATES = {"run_date", "eligible_since", "invited_on", "transaction_date", "payment_date",
         "last_transaction_date", "data_as_of"}
LISTS = {"reasons", "hold_reasons"}
BOOLS = {"eligible", "active_reseller"}
INTS = {"quantity", "row"}
problems = []


def scale_of(col):
    if col in DECIMALS:
        return DECIMALS[col]
    return 2 if col.endswith("_usd") else None


def unguard(v):
    return v[1:] if v[:1] == "'" and v[1:2] in ("=", "+", "-", "@", "\t", "\r") else v


for report in REPORTS:
    base = f"{out}/{report}/run_date={run_date}"
    with open(f"{base}/{report}.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    table = pq.read_table(f"{base}/part-0.parquet")
    meta = table.schema.metadata or {}
    if meta.get(b"program_version") is None or meta.get(b"run_id") is None:
        problems.append(f"{report}: key-value metadata lacks program_version/run_id: {meta}")
    if table.num_rows != len(csv_rows):
        problems.append(f"{report}: {table.num_rows} parquet rows vs {len(csv_rows)} CSV rows")
    for field in table.schema:
        s = scale_of(field.name)
        if s is not None and field.type != pa.decimal128(18, s):
            problems.append(f"{report}.{field.name}: {field.type}, expected decimal128(18, {s})")
        if field.name in DATES and field.type != pa.date32():
            problems.append(f"{report}.{field.name}: {field.type}, expected date32")
        if field.name in LISTS and field.type != pa.list_(pa.string()):
            problems.append(f"{report}.{field.name}: {field.type}, expected list<string>")
    if [f.name for f in table.schema] != (list(csv_rows[0].keys()) if csv_rows else [f.name for f in table.schema]):
        problems.append(f"{report}: parquet columns differ from CSV header")
    for i, (p, c) in enumerate(zip(table.to_pylist(), csv_rows)):
        for col, v in p.items():
            cv = c[col]
            if v is None:
                ok = cv == ""
            elif col in LISTS:
                ok = ";".join(v) == unguard(cv)
            elif scale_of(col) is not None:
                ok = Decimal(cv) == v
            elif col in DATES:
                ok = v.isoformat() == cv
            elif col in BOOLS:
                ok = str(v).lower() == cv
            elif col in INTS:
                ok = str(v) == cv
            else:
                ok = v == unguard(cv)
            if not ok:
                problems.append(f"{report} row {i + 1} {col}: parquet {v!r} vs CSV {cv!r}")
                break

    # DuckDB: types as BI tools see them, and the same totals as the CSV.
    con = duckdb.connect()
    desc = dict((r[0], r[1]) for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{out}/{report}/*/*.parquet', hive_partitioning=true)").fetchall())
    for col, typ in desc.items():
        s = scale_of(col)
        if s is not None and typ != f"DECIMAL(18,{s})":
            problems.append(f"duckdb {report}.{col}: {typ}")
        if col in DATES and typ != "DATE":
            problems.append(f"duckdb {report}.{col}: {typ}")
        if col in LISTS and typ != "VARCHAR[]":
            problems.append(f"duckdb {report}.{col}: {typ}")
    for col in desc:
        if scale_of(col) is not None and col != "earning_amount":
            got = con.execute(f"SELECT coalesce(sum({col}), 0) FROM read_parquet('{base}/part-0.parquet')").fetchone()[0]
            want = sum((Decimal(r[col]) for r in csv_rows if r[col] != ""), Decimal(0))
            if got != want:
                problems.append(f"duckdb {report}: sum({col}) {got} vs CSV {want}")

# pyarrow dataset over the hive partitions, run_date typed as a date.
part = ds.partitioning(pa.schema([("run_date", pa.date32())]), flavor="hive")
n = ds.dataset(f"{out}/earnings", format="parquet", partitioning=part, exclude_invalid_files=True).count_rows()
if n == 0:
    problems.append("pyarrow dataset over earnings/ found no rows")

for p in problems:
    print(p)
print(f"read_back.py: {len(REPORTS)} reports checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
