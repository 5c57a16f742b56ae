#!/usr/bin/env python3
"""Compare the DuckDB peer's totals with incentives' reports.

usage: check_peer.py LANDING PIPELINES RUN_DATE INCENTIVES_OUT PEER_OUT

Checks (each one counted as passed or failed):
  - per (program, partner): sum of earning_amount_usd and number of earning lines
    (incentives: INCENTIVES_OUT/csv/run_date=D/earnings.csv, peer: PEER_OUT/earnings.parquet);
  - per payout group (program, partner, earning_period, earning_type): earning_amount_usd
    (incentives: payouts.csv, peer: PEER_OUT/payouts.parquet);
  - per program: the set of (transaction_id, earning_period, earning_rate, earning_amount,
    earning_amount_usd, reason_code) lines is identical (a diagnostic that names the first lines
    that differ);
  - payouts, eligibility, unearned, dashboard: every row (by key) has identical values in every
    column except earning_id / payout_id (incentives: <report>.csv, peer: PEER_OUT/<report>.parquet);
    a row only on one side is a failure;
  - exports (when PEER_OUT/exports exists): the same partner folders, each with the same five
    files, every file with the same rows in the same order, compared on the key columns both
    sides write (the peer's earnings have its own columns), and `access.csv` byte-identical.
LANDING and PIPELINES are accepted for symmetry with duckdb_rules.py and not read.
"""
import csv
import os
import sys

import duckdb

D2, D4, D8 = "DECIMAL(18,2)", "DECIMAL(18,4)", "DECIMAL(18,8)"
# (report, key columns, compared columns with their type); earning_id / payout_id are left out.
REPORTS = [
    ("payouts", ["program_id", "partner_id", "earning_period", "earning_type"],
     [("run_date", "DATE"), ("program_id", "VARCHAR"), ("partner_id", "VARCHAR"), ("partner_name", "VARCHAR"),
      ("earning_period", "VARCHAR"), ("earning_type", "VARCHAR"), ("earning_amount_usd", D2),
      ("status", "VARCHAR"), ("hold_reasons", "list"), ("payment_date", "DATE")]),
    ("eligibility", ["program_id", "partner_id"],
     [("run_date", "DATE"), ("program_id", "VARCHAR"), ("partner_id", "VARCHAR"), ("partner_name", "VARCHAR"),
      ("partner_type", "VARCHAR"), ("eligible", "BOOLEAN"), ("reasons", "list"), ("eligible_since", "DATE"),
      ("invited_on", "DATE"), ("active_reseller", "BOOLEAN")]),
    ("unearned", ["program_id", "transaction_id"],
     [("run_date", "DATE"), ("program_id", "VARCHAR"), ("partner_id", "VARCHAR"), ("transaction_id", "VARCHAR"),
      ("transaction_date", "DATE"), ("lever", "VARCHAR"), ("transaction_amount", D4),
      ("transaction_currency", "VARCHAR"), ("reasons", "list")]),
    ("dashboard", ["program_id", "partner_id"],
     [("run_date", "DATE"), ("program_id", "VARCHAR"), ("partner_id", "VARCHAR"), ("partner_name", "VARCHAR"),
      ("eligible", "BOOLEAN"), ("reasons", "list"),
      *[(c, D2) for c in ["earned_to_date_usd", "rebate_to_date_usd", "coop_to_date_usd", "scheduled_usd",
                          "on_hold_usd", "carried_forward_usd", "accruing_usd", "coop_available_usd"]],
      ("last_transaction_date", "DATE"), ("data_as_of", "DATE")]),
]

# The columns an export row is known by, where its file has them (program, partner, period...).
KEY_COLUMNS = ["program_id", "partner_id", "transaction_id", "earning_period", "earning_type", "user_id", "file"]


def check_exports(inc_root, peer_root, report):
    """(passed, failed) of the per-partner exports: one check per partner folder."""
    if not os.path.isdir(peer_root):
        print("exports: not written by the peer (run without --exports), not checked")
        return 0, 0
    inc, peer = set(os.listdir(inc_root)), set(os.listdir(peer_root))
    bad = [(d, "only in incentives") for d in sorted(inc - peer)]
    bad += [(d, "only in peer") for d in sorted(peer - inc)]

    def keys(path):
        """The file's rows as their key columns (those both sides write), in file order."""
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            header = next(rows)
            at = [header.index(c) for c in KEY_COLUMNS if c in header]
            return [tuple(r[i].removeprefix("'") for i in at) for r in rows]

    for d in sorted(inc & peer):
        a, b = os.path.join(inc_root, d), os.path.join(peer_root, d)
        files = sorted(os.listdir(a))
        if files != sorted(os.listdir(b)):
            bad.append((d, f"files: incentives {files}, peer {sorted(os.listdir(b))}"))
            continue
        why = []
        for f in files:
            x, y = keys(os.path.join(a, f)), keys(os.path.join(b, f))
            if x != y:
                why.append(f"{f}: incentives {len(x)} rows, peer {len(y)}, "
                           f"first difference at row {next((i for i, (u, v) in enumerate(zip(x, y)) if u != v), min(len(x), len(y))) + 1}")
        with open(os.path.join(a, "access.csv"), "rb") as x, open(os.path.join(b, "access.csv"), "rb") as y:
            if x.read() != y.read():
                why.append("access.csv differs")
        if why:
            bad.append((d, "; ".join(why)))
    report(bad, "exports")
    print(f"exports: {len(inc | peer)} partner folders, {len(inc | peer) - len(bad)} alike")
    return len(inc | peer) - len(bad), len(bad)


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    _landing, _pipelines, run_date, inc_out, peer_out = sys.argv[1:]
    con = duckdb.connect()
    inc_e = os.path.join(inc_out, "csv", f"run_date={run_date}", "earnings.csv")
    inc_p = os.path.join(inc_out, "csv", f"run_date={run_date}", "payouts.csv")
    # Undo the CSV formula guard on identifiers ('=x -> =x).
    unguard = "CASE WHEN {c} SIMILAR TO '''[=+\\-@\t\r].*' THEN substr({c}, 2) ELSE {c} END"
    con.execute(f"""CREATE TABLE ie AS SELECT
        {unguard.format(c='program_id')} AS program_id, {unguard.format(c='partner_id')} AS partner_id,
        {unguard.format(c='transaction_id')} AS transaction_id, earning_period,
        earning_rate::DECIMAL(18,8) AS earning_rate, earning_amount::DECIMAL(18,4) AS earning_amount,
        earning_amount_usd::DECIMAL(18,2) AS earning_amount_usd, coalesce(reason_code, '') AS reason_code
        FROM read_csv({inc_e!r}, all_varchar = true)""")
    con.execute(f"""CREATE TABLE ip AS SELECT
        {unguard.format(c='program_id')} AS program_id, {unguard.format(c='partner_id')} AS partner_id,
        earning_period, earning_type, earning_amount_usd::DECIMAL(18,2) AS earning_amount_usd
        FROM read_csv({inc_p!r}, all_varchar = true)""")
    con.execute(f"""CREATE TABLE pe AS SELECT program_id, partner_id, transaction_id, earning_period,
        earning_rate::DECIMAL(18,8) AS earning_rate, earning_amount::DECIMAL(18,4) AS earning_amount,
        earning_amount_usd::DECIMAL(18,2) AS earning_amount_usd, coalesce(reason_code, '') AS reason_code
        FROM read_parquet({os.path.join(peer_out, 'earnings.parquet')!r})""")
    con.execute(f"""CREATE TABLE pp AS SELECT program_id, partner_id, earning_period, earning_type,
        earning_amount_usd::DECIMAL(18,2) AS earning_amount_usd
        FROM read_parquet({os.path.join(peer_out, 'payouts.parquet')!r})""")

    passed = failed = 0
    shown = 0

    def report(rows, what, limit=20):
        nonlocal shown
        for r in rows[:limit]:
            print(f"DIFF {what}: {r}")
        if len(rows) > limit:
            print(f"DIFF {what}: ... {len(rows) - limit} more")

    # per (program, partner) sums and counts
    rows = con.execute("""
        WITH a AS (SELECT program_id, partner_id, sum(earning_amount_usd) s, count(*) n FROM ie GROUP BY ALL),
             b AS (SELECT program_id, partner_id, sum(earning_amount_usd) s, count(*) n FROM pe GROUP BY ALL)
        SELECT program_id, partner_id, a.s, b.s, a.n, b.n,
               a.s IS NOT DISTINCT FROM b.s AS ok_sum, a.n IS NOT DISTINCT FROM b.n AS ok_n
        FROM a FULL JOIN b USING (program_id, partner_id) ORDER BY ALL""").fetchall()
    bad_sum = [(r[0], r[1], f"incentives {r[2]}", f"peer {r[3]}") for r in rows if not r[6]]
    bad_n = [(r[0], r[1], f"incentives {r[4]} lines", f"peer {r[5]} lines") for r in rows if not r[7]]
    report(bad_sum, "earning_amount_usd per (program, partner)")
    report(bad_n, "line count per (program, partner)")
    passed += sum(1 for r in rows if r[6]) + sum(1 for r in rows if r[7])
    failed += len(bad_sum) + len(bad_n)

    # payout groups
    rows = con.execute("""
        SELECT program_id, partner_id, earning_period, earning_type, ip.earning_amount_usd, pp.earning_amount_usd,
               ip.earning_amount_usd IS NOT DISTINCT FROM pp.earning_amount_usd AS ok
        FROM ip FULL JOIN pp USING (program_id, partner_id, earning_period, earning_type)
        ORDER BY ALL""").fetchall()
    bad = [(r[0], r[1], r[2], r[3], f"incentives {r[4]}", f"peer {r[5]}") for r in rows if not r[6]]
    report(bad, "payout group earning_amount_usd")
    passed += len(rows) - len(bad)
    failed += len(bad)

    # program totals and line-level diagnostic
    for (prog,) in con.execute("SELECT DISTINCT program_id FROM (SELECT program_id FROM ie UNION SELECT program_id FROM pe) ORDER BY 1").fetchall():
        t = con.execute("SELECT (SELECT sum(earning_amount_usd) FROM ie WHERE program_id = $1), "
                        "(SELECT sum(earning_amount_usd) FROM pe WHERE program_id = $1), "
                        "(SELECT count(*) FROM ie WHERE program_id = $1), "
                        "(SELECT count(*) FROM pe WHERE program_id = $1)", [prog]).fetchone()
        print(f"program {prog}: incentives {t[2]} lines {t[0]} USD; peer {t[3]} lines {t[1]} USD")
        if t[0] == t[1] and t[2] == t[3]:
            passed += 1
        else:
            failed += 1
            print(f"DIFF program total {prog}")
        diff = con.execute("""
            (SELECT 'incentives only' AS side, * EXCLUDE (program_id, partner_id) FROM ie WHERE program_id = $1
             EXCEPT SELECT 'incentives only', * EXCLUDE (program_id, partner_id) FROM pe WHERE program_id = $1)
            UNION ALL
            (SELECT 'peer only', * EXCLUDE (program_id, partner_id) FROM pe WHERE program_id = $1
             EXCEPT SELECT 'peer only', * EXCLUDE (program_id, partner_id) FROM ie WHERE program_id = $1)
            ORDER BY transaction_id, side""", [prog]).fetchall()
        if diff:
            failed += 1
            report(diff, f"lines of {prog} (side, transaction_id, earning_period, rate, amount, usd, reason)")
        else:
            passed += 1
    # Full reports other than earnings: every column but the hash ids, row by row on the key.
    for name, key, cols in REPORTS:
        inc_f = os.path.join(inc_out, "csv", f"run_date={run_date}", f"{name}.csv")
        peer_f = os.path.join(peer_out, name + ".parquet")
        def norm(c, ty, src):
            if ty == "list":  # CSV: codes joined by ';'; parquet: list of strings
                x = c if src == "inc" else f"array_to_string({c}, ';')"
                return f"NULLIF({x}, '') AS {c}"
            if src == "inc":
                c2 = unguard.format(c=c)
                return f"NULLIF({c2}, '')::{ty} AS {c}" if ty != "VARCHAR" else f"NULLIF({c2}, '') AS {c}"
            return f"{c}::{ty} AS {c}" if ty != "VARCHAR" else f"NULLIF({c}::VARCHAR, '') AS {c}"
        names = [c for c, _ in cols]
        con.execute(f"CREATE OR REPLACE TABLE a AS SELECT {', '.join(norm(c, t, 'inc') for c, t in cols)} "
                    f"FROM read_csv({inc_f!r}, all_varchar = true, header = true, hive_partitioning = false)")
        con.execute(f"CREATE OR REPLACE TABLE b AS SELECT {', '.join(norm(c, t, 'peer') for c, t in cols)} "
                    f"FROM read_parquet({peer_f!r})")
        nonkey = [c for c in names if c not in key]
        k = ", ".join(key)
        rows = con.execute(f"""
            SELECT {k}, a.{key[0]} IS NULL AS peer_only, b.{key[0]} IS NULL AS inc_only,
                   {', '.join(f'a.{c} IS NOT DISTINCT FROM b.{c}' for c in nonkey)},
                   {', '.join(f'a.{c}::VARCHAR' for c in nonkey)}, {', '.join(f'b.{c}::VARCHAR' for c in nonkey)}
            FROM a FULL JOIN b USING ({k}) ORDER BY ALL""").fetchall()
        nk, nn = len(key), len(nonkey)
        bad = []
        for r in rows:
            oks = r[nk + 2:nk + 2 + nn]
            if r[nk] or r[nk + 1]:
                bad.append((*r[:nk], "only in peer" if r[nk] else "only in incentives"))
            elif not all(oks):
                diffs = [f"{c}: incentives {r[nk + 2 + nn + i]!r} peer {r[nk + 2 + 2 * nn + i]!r}"
                         for i, c in enumerate(nonkey) if not oks[i]]
                bad.append((*r[:nk], "; ".join(diffs)))
        report(bad, f"{name} rows")
        print(f"{name}: {len(rows)} rows, {len(rows) - len(bad)} identical")
        passed += len(rows) - len(bad)
        failed += len(bad)
    p, f = check_exports(os.path.join(inc_out, "exports", f"run_date={run_date}"),
                         os.path.join(peer_out, "exports"), report)
    passed += p
    failed += f
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
