#!/usr/bin/env python3
"""I/O floor of an `incentives run` (benchmark, issue 6).

usage: io_floor.py LANDING RUN_DATE|latest REPORTS_OUT|CSV_BYTES,PARQUET_BYTES FLOOR_OUT

What any implementation of the nightly run has to do at least, with nothing computed:

1. Read every column of every landing-zone file the run reads, fully decoded into Arrow tables
   (pyarrow.parquet.read_table / pyarrow.csv.read_csv, pyarrow's default threads). The layout is
   LANDING/<feed>/<YYYY-MM-DD>[-suffix].<csv|csv.gz|parquet>; snapshot feeds (partners,
   agreements, competencies, users, payment_profiles) read every file of their newest delivery
   date on or before the run date, event feeds (transactions, fx_rates) every file dated on or
   before it. `latest` is the newest date among the transactions files (as duckdb_rules.py).
   Files are read one after another and dropped once read, except the first ~1M transaction
   rows (of files with the schema of the first one), kept as the data to write.
2. Count the bytes of the `.csv` and `.parquet` files published under REPORTS_OUT (the output
   folder of `incentives run`, reports and per-partner `exports/`): the staging folders
   `_runs/<D>/<id>` that the links `_current/<D>` point to, each file once (a previous run kept
   under `_runs/` is not published and not counted). Without `_current`, the folders not
   starting with `_` are walked, links followed.
3. Write at least as many bytes to FLOOR_OUT/floor.csv (pyarrow.csv.CSVWriter) and
   FLOOR_OUT/floor.parquet (pyarrow.parquet.ParquetWriter, zstd level 3 as incentives), made of
   the kept transaction rows written over and over; parquet sizes are compressed bytes, row
   groups are added until the file reaches its target. No fsync (incentives does none).

The output goes to one file per format (incentives writes thousands of smaller ones).
Prints what it read and wrote.
"""
import datetime as dt
import os
import re
import sys
import time

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

SNAPSHOTS = ["partners", "agreements", "competencies", "users", "payment_profiles"]
EVENTS = ["transactions", "fx_rates"]
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SOURCE_ROWS = 1 << 20  # transaction rows kept as the data to write (incentives' row group size)
MAX_CHUNK_ROWS = 1 << 20  # rows per write call (one parquet row group each)
FIRST_CHUNK_ROWS = 1 << 10  # the first write measures bytes per row


def parse_name(name):
    """(date, suffix, ext) of `<YYYY-MM-DD>[-<anything>].<csv|csv.gz|parquet>`, else None."""
    for ext in ("csv.gz", "csv", "parquet"):
        if name.endswith("." + ext):
            stem = name[: -len(ext) - 1]
            break
    else:
        return None
    date_text, suffix = stem[:10], stem[10:]
    if not DATE_RE.match(date_text) or (suffix and not suffix.startswith("-")):
        return None
    try:
        return dt.date.fromisoformat(date_text), suffix, ext
    except ValueError:
        return None


def feed_files(landing, feed):
    """[(date, suffix, ext, path)] of a feed's delivery files, in delivery order."""
    folder = os.path.join(landing, feed)
    out = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name)
        parsed = parse_name(name)
        if parsed and os.path.isfile(path):
            out.append((*parsed, path))
    out.sort(key=lambda f: (f[0], f[1].encode(), f[2]))
    return out


def selected_files(landing, run_date):
    """[(feed, path)] the run for run_date reads."""
    out = []
    for feed in SNAPSHOTS + EVENTS:
        files = [f for f in feed_files(landing, feed) if f[0] <= run_date]
        if feed in SNAPSHOTS and files:
            newest = max(f[0] for f in files)
            files = [f for f in files if f[0] == newest]
        out += [(feed, f[3]) for f in files]
    return out


def read_file(path):
    """The whole file as an Arrow table, every column decoded."""
    if path.endswith(".parquet"):
        return pq.read_table(path)
    # .csv.gz is decompressed (detected from the extension); rows with the wrong number of
    # fields are skipped, and a file whose types cannot be inferred is read as text.
    parse = pacsv.ParseOptions(invalid_row_handler=lambda row: "skip")
    try:
        return pacsv.read_csv(path, parse_options=parse)
    except pa.ArrowInvalid:
        header = pacsv.open_csv(path, parse_options=parse).schema.names
        convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in header})
        return pacsv.read_csv(path, parse_options=parse, convert_options=convert)


def report_bytes(out):
    """(csv bytes, parquet bytes, files) of the reports published under `out`.

    A local output folder publishes each date as the link `_current/<D>` to its staging folder
    `_runs/<D>/<id>` (the report folders link into it): those folders are summed. Without
    `_current`, the folders not starting with `_` are walked, links followed, each real folder
    once."""
    totals = {"csv": 0, "parquet": 0, "files": 0}
    seen = set()

    def walk(folder, skip_underscore=False):
        real = os.path.realpath(folder)
        if real in seen:
            return
        seen.add(real)
        with os.scandir(folder) as entries:
            for e in entries:
                if e.is_dir():  # follows links
                    if not (skip_underscore and e.name.startswith("_")):
                        walk(e.path)
                elif e.is_file():
                    ext = e.name.rsplit(".", 1)[-1]
                    if ext in ("csv", "parquet"):
                        totals[ext] += e.stat().st_size
                        totals["files"] += 1

    current = os.path.join(out, "_current")
    published = [os.path.join(current, d) for d in os.listdir(current)] if os.path.isdir(current) else []
    for folder in published:
        if os.path.isdir(folder):
            walk(folder)
    if not published and os.path.isdir(out):
        walk(out, skip_underscore=True)
    return totals["csv"], totals["parquet"], totals["files"]


class Cycle:
    """Endless slices of a table, wrapping around at its end."""

    def __init__(self, table):
        self.table, self.pos = table, 0

    def take(self, n):
        parts = []
        while n > 0:
            k = min(n, self.table.num_rows - self.pos)
            parts.append(self.table.slice(self.pos, k))
            self.pos = (self.pos + k) % self.table.num_rows
            n -= k
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def write_until(target, source, open_writer, write, position, close):
    """Writes slices of `source` until `position()` reaches `target`; returns (bytes, rows)."""
    # A chunk is at most the source's rows, so that a parquet row group holds no row twice
    # (repeats would compress better than the reports' data).
    most = min(MAX_CHUNK_ROWS, source.num_rows)
    cycle, rows, chunk = Cycle(source), 0, min(FIRST_CHUNK_ROWS, most)
    writer = open_writer()
    while position(writer) < target:
        write(writer, cycle.take(chunk))
        rows += chunk
        per_row = max(position(writer) / rows, 1e-3)
        # Size the next chunk to the bytes still missing (+1% so the end is not a crawl).
        chunk = int(min(most, max(1024, (target - position(writer)) / per_row * 1.01)))
    return close(writer), rows


def write_csv(path, target, source):
    sink = pa.OSFile(path, "wb")
    return write_until(
        target, source,
        lambda: pacsv.CSVWriter(sink, source.schema),
        lambda w, t: w.write_table(t),
        lambda w: sink.tell(),
        lambda w: (w.close(), sink.close(), os.path.getsize(path))[2],
    )


def write_parquet(path, target, source):
    sink = pa.OSFile(path, "wb")
    return write_until(
        target, source,
        lambda: pq.ParquetWriter(sink, source.schema, compression="zstd", compression_level=3),
        lambda w, t: w.write_table(t, row_group_size=t.num_rows),
        lambda w: sink.tell(),
        lambda w: (w.close(), sink.close(), os.path.getsize(path))[2],
    )


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    landing, run_date_arg, reports_out, floor_out = sys.argv[1:]
    if run_date_arg == "latest":
        dates = [f[0] for f in feed_files(landing, "transactions")]
        if not dates:
            sys.exit(f"no transactions files in {landing}/transactions")
        run_date = max(dates)
    else:
        run_date = dt.date.fromisoformat(run_date_arg)

    # 1. Read.
    t0 = time.time()
    kept, kept_rows = [], 0
    per_feed = {}  # feed -> [files, rows, bytes on disk, bytes in memory]
    for feed, path in selected_files(landing, run_date):
        table = read_file(path)
        s = per_feed.setdefault(feed, [0, 0, 0, 0])
        s[0] += 1
        s[1] += table.num_rows
        s[2] += os.path.getsize(path)
        s[3] += table.nbytes
        if (feed == "transactions" and kept_rows < SOURCE_ROWS and table.num_rows
                and (not kept or table.schema.equals(kept[0].schema))):
            kept.append(table)
            kept_rows += table.num_rows
        del table
    t_read = time.time() - t0
    print(f"run date {run_date}: read {sum(s[0] for s in per_feed.values())} files, "
          f"{sum(s[1] for s in per_feed.values()):,} rows, {sum(s[2] for s in per_feed.values()):,} bytes "
          f"on disk, {sum(s[3] for s in per_feed.values()):,} bytes decoded in {t_read:.2f}s")
    for feed, (files, rows, disk, mem) in per_feed.items():
        print(f"  {feed}: {files} files, {rows:,} rows, {disk:,} bytes on disk, {mem:,} bytes decoded")

    # 2. What incentives wrote (or the byte counts given as CSV_BYTES,PARQUET_BYTES).
    if "," in reports_out and not os.path.exists(reports_out):
        csv_target, parquet_target = (int(x) for x in reports_out.split(","))
        n_reports = "(given)"
    else:
        csv_target, parquet_target, n_reports = report_bytes(reports_out)
    print(f"reports under {reports_out}: {n_reports} files, {csv_target:,} bytes of CSV, "
          f"{parquet_target:,} bytes of parquet")

    # 3. Write as much.
    if not kept:
        sys.exit("no transaction rows read: nothing to write")
    source = pa.concat_tables(kept).combine_chunks()
    del kept
    os.makedirs(floor_out, exist_ok=True)
    t1 = time.time()
    for name, target, writer in [("floor.csv", csv_target, write_csv),
                                 ("floor.parquet", parquet_target, write_parquet)]:
        path = os.path.join(floor_out, name)
        if target == 0:
            if os.path.exists(path):
                os.remove(path)
            continue
        t = time.time()
        size, rows = writer(path, target, source)
        print(f"wrote {path}: {size:,} bytes (target {target:,}), {rows:,} rows in {time.time() - t:.2f}s")
    print(f"read {t_read:.2f}s, write {time.time() - t1:.2f}s, total {time.time() - t0:.2f}s")


if __name__ == "__main__":
    main()
