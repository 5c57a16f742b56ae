#!/usr/bin/env python3
"""Reads the published reports back as BI tools do, and checks them against the CSVs.

Every report's dataset folder (`OUT/<report>/`, parquet only since reports.md v4) is read as a
folder, with every published run date in it, by pandas, polars, pyarrow, DuckDB and Spark. Each
reader must see the partition column `run_date`, the types (Decimal(18, s), Date,
list<string>), all the rows of all the dates, the keys docs/reports.md gives (unique per run
date), and, through the current-state recipe of docs/reports.md
for that reader (keep the newest `run_date`), exactly the rows and exact money sums of the
newest run's CSV. pyarrow also compares the newest partition with its CSV row by row.

Usage: python3 tests/bi/read_back.py OUT_DIR RUN_DATE...   (exit 1 listing the problems)
"""
import csv, os, sys
from decimal import Decimal

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

out, dates = sys.argv[1], sorted(sys.argv[2:])
latest = dates[-1]
REPORTS = ["eligibility", "earnings", "unearned", "payouts", "dashboard", "rejects"]
DECIMALS = {
    "transaction_amount": 4, "usd_rate": 8, "transaction_amount_usd": 2, "earning_rate": 8,
    "earning_amount": 4, "earning_amount_usd": 2,
}
DATES = {"eligible_since", "invited_on", "transaction_date", "payment_date",
         "last_transaction_date", "data_as_of"}
LISTS = {"reasons", "hold_reasons"}
BOOLS = {"eligible", "active_reseller"}
INTS = {"quantity", "row"}
# The keys docs/reports.md gives for each report's rows: unique in every run's partition.
KEYS = {
    "eligibility": ["program_id", "partner_id"],
    "earnings": ["program_id", "transaction_id"],
    "unearned": ["program_id", "transaction_id"],
    "payouts": ["program_id", "partner_id", "earning_period", "earning_type"],
    "dashboard": ["program_id", "partner_id"],
    "rejects": ["feed", "file", "row", "field", "reason"],
}
problems = []


def scale_of(col):
    if col in DECIMALS:
        return DECIMALS[col]
    return 2 if col.endswith("_usd") else None


def unguard(v):
    return v[1:] if v[:1] == "'" and v[1:2] in ("=", "+", "-", "@", "\t", "\r") else v


def read_csv(report, date):
    with open(f"{out}/csv/run_date={date}/{report}.csv", newline="") as f:
        return list(csv.DictReader(f))


def money_columns(rows, header):
    # earning_amount mixes currencies: its sum means nothing, but it is still compared row by row.
    return [c for c in header if scale_of(c) is not None and c != "earning_amount"]


def csv_sum(rows, col):
    return sum((Decimal(r[col]) for r in rows if r[col] != ""), Decimal(0))


def check(reader, report, total_rows, current_rows, current_sums, want_rows, want_sums):
    if total_rows != sum(len(read_csv(report, d)) for d in dates):
        problems.append(f"{reader} {report}: {total_rows} rows over all run dates")
    if current_rows != want_rows:
        problems.append(f"{reader} {report}: current state has {current_rows} rows, CSV of {latest} {want_rows}")
    for col, want in want_sums.items():
        got = current_sums.get(col)
        if got is None or Decimal(str(got)) != want:
            problems.append(f"{reader} {report}: current sum({col}) {got} vs CSV {want}")


# pyspark is the slowest to start: one session for every report.
from pyspark.sql import SparkSession, functions as F
spark = (SparkSession.builder.master("local[1]").appName("read_back")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")

for report in REPORTS:
    folder = f"{out}/{report}"
    want = read_csv(report, latest)
    header = list(want[0].keys()) if want else None
    money = money_columns(want, header or [])
    want_sums = {c: csv_sum(want, c) for c in money}
    others = sorted(f for p in os.listdir(folder) for f in os.listdir(f"{folder}/{p}") if not f.endswith(".parquet"))
    if others:
        problems.append(f"{report}/: not only parquet files: {others}")

    # pyarrow: the folder as a dataset; run_date typed as a date by the partitioning given.
    part = ds.partitioning(pa.schema([("run_date", pa.date32())]), flavor="hive")
    table = pq.read_table(folder, partitioning=part)
    current = table.filter(pc.equal(table["run_date"], pc.max(table["run_date"])))
    check("pyarrow", report, table.num_rows, current.num_rows,
          {c: pc.sum(current[c]).as_py() or 0 for c in money}, len(want), want_sums)
    for field in table.schema:
        s = scale_of(field.name)
        if s is not None and field.type != pa.decimal128(18, s):
            problems.append(f"pyarrow {report}.{field.name}: {field.type}, expected decimal128(18, {s})")
        if field.name in DATES | {"run_date"} and field.type != pa.date32():
            problems.append(f"pyarrow {report}.{field.name}: {field.type}, expected date32")
        if field.name in LISTS and field.type != pa.list_(pa.string()):
            problems.append(f"pyarrow {report}.{field.name}: {field.type}, expected list<string>")
    file_columns = pq.read_schema(f"{folder}/run_date={latest}/part-0.parquet")
    meta = file_columns.metadata or {}
    if meta.get(b"run_date") != latest.encode() or meta.get(b"run_id") is None:
        problems.append(f"{report}: the footer lacks run_date={latest} or run_id: {meta}")
    if "run_date" in file_columns.names:
        problems.append(f"{report}: the parquet file repeats the partition column run_date")
    if header and file_columns.names != [c for c in header if c != "run_date"]:
        problems.append(f"{report}: parquet columns {file_columns.names} are not the CSV's without run_date")
    for i, (p, c) in enumerate(zip(current.drop_columns(["run_date"]).to_pylist(), want)):
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
                problems.append(f"pyarrow {report} row {i + 1} {col}: parquet {v!r} vs CSV {cv!r}")
                break

    # pandas: the folder; run_date comes as a category, compared as text (ISO dates sort).
    df = pd.read_parquet(folder)
    newest = df["run_date"].astype(str)
    cur = df[newest == newest.max()]
    check("pandas", report, len(df), len(cur), {c: sum(cur[c].dropna(), Decimal(0)) for c in money},
          len(want), want_sums)

    # polars: the folder, lazily; the same filter in the query.
    lf = pl.scan_parquet(folder)
    cur = lf.filter(pl.col("run_date") == pl.col("run_date").max()).collect()
    total = lf.select(pl.len()).collect().item()
    check("polars", report, total, cur.height, {c: cur[c].sum() for c in money}, len(want), want_sums)
    for col in money:
        if cur.schema[col] != pl.Decimal(18, scale_of(col)):
            problems.append(f"polars {report}.{col}: {cur.schema[col]}")

    # DuckDB: a glob of the folder's partitions with hive partitioning.
    con = duckdb.connect()
    src = f"read_parquet('{folder}/*/*.parquet', hive_partitioning = true)"
    total = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
    current_sql = f"SELECT * FROM {src} WHERE run_date = (SELECT max(run_date) FROM {src})"
    n = con.execute(f"SELECT count(*) FROM ({current_sql})").fetchone()[0]
    sums = {c: con.execute(f"SELECT coalesce(sum({c}), 0) FROM ({current_sql})").fetchone()[0] for c in money}
    check("duckdb", report, total, n, sums, len(want), want_sums)
    key = ", ".join(KEYS[report])
    dupes = con.execute(f"SELECT run_date, {key}, count(*) FROM {src} GROUP BY ALL HAVING count(*) > 1").fetchall()
    if dupes:
        problems.append(f"{report}: the documented key ({key}) is not unique: {dupes[:3]}")
    if report == "earnings":
        ids = con.execute(f"SELECT count(*) - count(DISTINCT earning_id) FROM ({current_sql})").fetchone()[0]
        if ids:
            problems.append(f"earnings: earning_id repeats {ids} times in one run")
    desc = dict((r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall())
    for col, typ in desc.items():
        s = scale_of(col)
        if s is not None and typ != f"DECIMAL(18,{s})":
            problems.append(f"duckdb {report}.{col}: {typ}")
        if col in DATES | {"run_date"} and typ != "DATE":
            problems.append(f"duckdb {report}.{col}: {typ}")
        if col in LISTS and typ != "VARCHAR[]":
            problems.append(f"duckdb {report}.{col}: {typ}")

    # Spark: the folder; partition discovery types run_date as a date.
    sdf = spark.read.parquet(folder)
    newest = sdf.agg(F.max("run_date")).first()[0]
    cur = sdf.where(F.col("run_date") == F.lit(newest))
    sums = cur.agg(*[F.sum(c).alias(c) for c in money]).first().asDict() if money else {}
    check("spark", report, sdf.count(), cur.count(), {c: v or 0 for c, v in sums.items()}, len(want), want_sums)
    types = dict(sdf.dtypes)
    if types.get("run_date") != "date":
        problems.append(f"spark {report}.run_date: {types.get('run_date')}")
    for col, typ in types.items():
        s = scale_of(col)
        if s is not None and typ != f"decimal(18,{s})":
            problems.append(f"spark {report}.{col}: {typ}")
        if col in LISTS and typ != "array<string>":
            problems.append(f"spark {report}.{col}: {typ}")

spark.stop()
for p in problems:
    print(p)
print(f"read_back.py: {len(REPORTS)} report folders over {len(dates)} run dates read by pandas, polars, "
      f"pyarrow, DuckDB and Spark; {len(problems)} problems")
sys.exit(1 if problems else 0)
