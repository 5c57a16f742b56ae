#!/usr/bin/env python3
"""DuckDB SQL peer of the incentives earnings rules (benchmark, issue 6).

usage: duckdb_rules.py LANDING PIPELINES RUN_DATE|latest OUT [--threads N] [--memory-limit 8GB]

Computes, with DuckDB SQL only, the earnings lines of every program in PIPELINES and their
payout groups per (program, partner, booked period, earning type), and writes
OUT/earnings.{csv,parquet} and OUT/payouts.{csv,parquet}.

Assumes validated input (no rejects, keys or duplicates handled); parquet landing files only.
See README.md in this folder for what is covered and simplified.
"""
import argparse
import datetime as dt
import os
import re
import sys
import time
import tomllib

import duckdb

SNAPSHOTS = ["partners", "agreements", "competencies", "payment_profiles"]
FILE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(-[^/]*)?\.parquet$")

# ISO 4217 minor units that differ from 2 (active codes); every other code has 2.
MINOR_UNITS = {
    **{c: 0 for c in "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()},
    **{c: 3 for c in "BHD IQD JOD KWD LYD OMR TND".split()},
    **{c: 4 for c in "CLF UYW".split()},
}


def deliveries(landing, feed, run_date):
    """[(date, path)] of the feed's parquet files dated on or before run_date, in feed order."""
    folder = os.path.join(landing, feed)
    out = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        m = FILE_RE.match(name)
        if not m:
            continue
        try:
            d = dt.date.fromisoformat(m.group(1))
        except ValueError:
            continue
        if d <= run_date:
            out.append((d, m.group(2) or "", os.path.join(folder, name)))
    out.sort()
    return [(d, p) for d, _, p in out]


def sql_list(paths):
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def q(s):
    return "'" + str(s).replace("'", "''") + "'"


def load_programs(folder):
    progs = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".toml"):
            with open(os.path.join(folder, name), "rb") as f:
                progs.append(tomllib.load(f))
    return progs


def program_sql(progs):
    """VALUES tables for programs, lever families and tiers, generated from the TOML."""
    prog_rows, fam_rows, tier_rows = [], [], []
    for p in progs:
        prog_rows.append(
            f"({q(p['id'])}, {q(p['partner_type'])}, DATE {q(p['start'])}, DATE {q(p['end'])}, "
            f"{q(p['earning_period'])}, {int(p['payout_lag_months'])}, "
            f"{q(p['minimum_payout_usd'])}::DECIMAL(18,2))"
        )
        for lv in p["levers"]:
            for fam in lv["product_families"]:
                fam_rows.append(
                    f"({q(p['id'])}, {q(lv['name'])}, {q(lv['earning_type'])}, {q(fam)}, "
                    f"{q(lv['rate'])}::DECIMAL(18,8))"
                )
            for t in lv.get("tiers", []):
                tier_rows.append(
                    f"({q(p['id'])}, {q(lv['name'])}, {q(t['min_period_revenue_usd'])}::DECIMAL(18,2), "
                    f"{q(t['rate'])}::DECIMAL(18,8))"
                )
    stmts = [
        "CREATE TABLE programs AS SELECT * FROM (VALUES " + ", ".join(prog_rows) + ") "
        "v(program_id, partner_type, pstart, pend, period_kind, lag, minimum_usd)",
        "CREATE TABLE lever_families AS SELECT * FROM (VALUES " + ", ".join(fam_rows) + ") "
        "v(program_id, lever, earning_type, product_family, base_rate)",
    ]
    if tier_rows:
        stmts.append(
            "CREATE TABLE tiers AS SELECT * FROM (VALUES " + ", ".join(tier_rows) + ") "
            "v(program_id, lever, min_usd, tier_rate)"
        )
    else:
        stmts.append(
            "CREATE TABLE tiers (program_id VARCHAR, lever VARCHAR, min_usd DECIMAL(18,2), tier_rate DECIMAL(18,8))"
        )
    return stmts


# Period helpers as SQL macros: kind is 'month' or 'quarter'.
MACROS = """
CREATE MACRO pstart(kind, d) AS CASE WHEN kind = 'month' THEN date_trunc('month', d) ELSE date_trunc('quarter', d) END::DATE;
CREATE MACRO pend(kind, d) AS (pstart(kind, d) + CASE WHEN kind = 'month' THEN INTERVAL 1 MONTH ELSE INTERVAL 3 MONTH END - INTERVAL 1 DAY)::DATE;
CREATE MACRO plabel(kind, d) AS CASE WHEN kind = 'month' THEN strftime(d, '%Y-%m') ELSE strftime(d, '%Y') || '-Q' || quarter(d)::VARCHAR END;
CREATE MACRO round_minor(x, mu) AS CASE mu
    WHEN 0 THEN round(x, 0)::DECIMAL(18,4)
    WHEN 1 THEN round(x, 1)::DECIMAL(18,4)
    WHEN 2 THEN round(x, 2)::DECIMAL(18,4)
    WHEN 3 THEN round(x, 3)::DECIMAL(18,4)
    ELSE round(x, 4)::DECIMAL(18,4) END;
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("landing")
    ap.add_argument("pipelines")
    ap.add_argument("run_date", help="YYYY-MM-DD, or 'latest' for the newest transactions delivery")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--memory-limit")
    ap.add_argument("--timings", action="store_true")
    a = ap.parse_args()

    if a.run_date != "latest":
        run_date = dt.date.fromisoformat(a.run_date)
    else:
        run_date = max(d for d, _ in deliveries(a.landing, "transactions", dt.date.max))
    t0 = time.time()
    con = duckdb.connect()
    if a.threads:
        con.execute(f"SET threads = {a.threads}")
    if a.memory_limit:
        con.execute(f"SET memory_limit = {q(a.memory_limit)}")
    con.execute("SET preserve_insertion_order = false")

    def ex(label, sql):
        t = time.time()
        con.execute(sql)
        if a.timings:
            print(f"  {label}: {time.time() - t:.2f}s", file=sys.stderr)

    for stmt in program_sql(load_programs(a.pipelines)):
        con.execute(stmt)
    con.execute(MACROS)
    con.execute(f"SET VARIABLE run_date = DATE '{run_date}'")
    con.execute(
        "CREATE TABLE minor_units AS SELECT * FROM (VALUES "
        + ", ".join(f"({q(c)}, {u})" for c, u in MINOR_UNITS.items())
        + ") v(currency, mu)"
    )

    # ---- inputs -------------------------------------------------------------------------
    for feed in SNAPSHOTS:
        files = deliveries(a.landing, feed, run_date)
        newest = max(d for d, _ in files)
        paths = [p for d, p in files if d == newest]
        con.execute(f"CREATE VIEW raw_{feed} AS SELECT * FROM read_parquet({sql_list(paths)})")
    ex("partners", """
        CREATE TABLE partners AS SELECT partner_id, partner_name, partner_type,
               NULLIF(trim(network_registered_on), '')::DATE AS registered_on
        FROM raw_partners""")
    ex("agreements", """
        CREATE TABLE agreements AS SELECT partner_id, agreement_type, start_date::DATE AS sd,
               NULLIF(trim(end_date), '')::DATE AS ed FROM raw_agreements""")
    ex("competencies", """
        CREATE TABLE competencies AS SELECT partner_id, start_date::DATE AS sd,
               NULLIF(trim(end_date), '')::DATE AS ed FROM raw_competencies""")

    fx_files = [p for _, p in deliveries(a.landing, "fx_rates", run_date)]
    ex("fx", f"""
        CREATE TABLE fx AS
        SELECT currency, month, usd_rate::DECIMAL(18,8) AS usd_rate
        FROM read_parquet({sql_list(fx_files)}) WHERE currency <> 'USD'
        QUALIFY row_number() OVER (PARTITION BY currency, month) = 1""")

    tx_files = [p for _, p in deliveries(a.landing, "transactions", run_date)]
    ex("transactions", f"""
        CREATE TABLE tx AS
        SELECT transaction_id, transaction_date::DATE AS transaction_date, transaction_type,
               NULLIF(original_transaction_id, '') AS original_transaction_id,
               reseller_id, NULLIF(provider_id, '') AS provider_id, customer_id, product_id,
               product_family, quantity, amount::DECIMAL(18,4) AS amount, t.currency,
               regexp_extract(filename, '(\\d{{4}}-\\d{{2}}-\\d{{2}})[^/]*$', 1)::DATE AS delivery_date,
               CASE WHEN t.currency = 'USD' THEN 1::DECIMAL(18,8) ELSE f.usd_rate END AS usd_rate,
               coalesce(mu.mu, 2) AS mu
        FROM read_parquet({sql_list(tx_files)}, filename = true) t
        LEFT JOIN fx f ON f.currency = t.currency AND f.month = strftime(t.transaction_date::DATE, '%Y-%m')
        LEFT JOIN minor_units mu ON mu.currency = t.currency""")

    # ---- considered sales and their eligibility -----------------------------------------
    # invited_on: the day after the first sale as reseller (any family, any date).
    ex("first_sale", """
        CREATE TABLE first_sale AS SELECT reseller_id AS partner_id, min(transaction_date) AS first_sale
        FROM tx WHERE transaction_type = 'sale' GROUP BY ALL""")
    ex("considered_sales", """
        CREATE TABLE csales AS
        WITH c AS (
          SELECT p.program_id, p.partner_type AS program_type, p.period_kind, lf.lever, lf.earning_type,
                 lf.base_rate,
                 CASE WHEN p.partner_type = 'indirect_provider' THEN t.provider_id ELSE t.reseller_id END AS earner,
                 t.*
          FROM tx t
          JOIN lever_families lf ON lf.product_family = t.product_family
          JOIN programs p ON p.program_id = lf.program_id
          WHERE t.transaction_type = 'sale' AND t.transaction_date BETWEEN p.pstart AND p.pend
        )
        SELECT c.* EXCLUDE (earner, program_type), c.program_type AS partner_type, c.earner AS partner_id
        FROM c JOIN partners pa ON pa.partner_id = c.earner AND pa.partner_type = c.program_type""")
    # Every failing code is not needed here, only whether the earner is eligible on the date.
    ex("eligible_sales", """
        CREATE TABLE esales AS
        WITH keys AS (SELECT DISTINCT partner_id, partner_type, transaction_date AS d FROM csales),
        elig AS (
          SELECT k.partner_id, k.partner_type, k.d
          FROM keys k JOIN partners pa USING (partner_id)
          LEFT JOIN first_sale fs USING (partner_id)
          WHERE EXISTS (SELECT 1 FROM agreements a WHERE a.partner_id = k.partner_id
                          AND a.agreement_type = 'partner_network' AND a.sd <= k.d AND (a.ed IS NULL OR k.d <= a.ed))
            AND (k.partner_type <> 'indirect_provider' OR EXISTS (SELECT 1 FROM agreements a
                   WHERE a.partner_id = k.partner_id AND a.agreement_type = 'cloud_distributor'
                     AND a.sd <= k.d AND (a.ed IS NULL OR k.d <= a.ed)))
            AND (k.partner_type <> 'direct_reseller' OR EXISTS (SELECT 1 FROM agreements a
                   WHERE a.partner_id = k.partner_id AND a.agreement_type = 'cloud_reseller'
                     AND a.sd <= k.d AND (a.ed IS NULL OR k.d <= a.ed)))
            AND (k.partner_type <> 'indirect_reseller'
                 OR (pa.registered_on IS NOT NULL AND pa.registered_on <= k.d AND fs.first_sale < k.d))
            AND EXISTS (SELECT 1 FROM competencies c WHERE c.partner_id = k.partner_id
                          AND c.sd <= k.d AND (c.ed IS NULL OR k.d <= c.ed))
        )
        SELECT s.* FROM csales s
        SEMI JOIN elig e ON e.partner_id = s.partner_id AND e.partner_type = s.partner_type
                        AND e.d = s.transaction_date""")

    # ---- lines (sales that earned + refunds of them), periods, tiers ---------------------
    ex("lines", """
        CREATE TABLE lines0 AS
        WITH l AS (
          SELECT s.program_id, s.period_kind, s.lever, s.earning_type, s.base_rate, s.partner_id,
                 s.transaction_id, s.transaction_type, s.original_transaction_id, s.transaction_date,
                 s.delivery_date, s.customer_id, s.product_id, s.product_family, s.quantity, s.amount,
                 s.currency, s.usd_rate, s.mu,
                 s.transaction_id AS sale_id, s.transaction_date AS sale_date
          FROM esales s
          UNION ALL
          SELECT s.program_id, s.period_kind, s.lever, s.earning_type, s.base_rate, s.partner_id,
                 r.transaction_id, r.transaction_type, r.original_transaction_id, r.transaction_date,
                 r.delivery_date, r.customer_id, r.product_id, r.product_family, r.quantity, r.amount,
                 r.currency, r.usd_rate, r.mu,
                 s.transaction_id AS sale_id, s.transaction_date AS sale_date
          FROM tx r JOIN esales s ON r.transaction_type = 'refund' AND r.original_transaction_id = s.transaction_id
        )
        SELECT l.*,
               round(l.amount::DECIMAL(38,4) * l.usd_rate, 2)::DECIMAL(18,2) AS transaction_amount_usd,
               pstart(period_kind, transaction_date) AS tp_start,
               delivery_date <= pend(period_kind, transaction_date) + 1 AS on_time,
               pstart(period_kind, sale_date) AS sale_tp_start
        FROM l""")
    ex("tier_rates", """
        CREATE TABLE period_rates AS
        WITH rev AS (
          SELECT program_id, partner_id, lever, tp_start, sum(transaction_amount_usd) AS revenue
          FROM lines0 WHERE on_time GROUP BY ALL
        ),
        keys AS (SELECT DISTINCT program_id, partner_id, lever, base_rate, sale_tp_start AS tp_start FROM lines0)
        SELECT k.program_id, k.partner_id, k.lever, k.tp_start,
               coalesce((SELECT arg_max(t.tier_rate, t.min_usd) FROM tiers t
                         WHERE t.program_id = k.program_id AND t.lever = k.lever
                           AND coalesce(r.revenue, 0) >= t.min_usd), k.base_rate) AS rate
        FROM keys k LEFT JOIN rev r USING (program_id, partner_id, lever, tp_start)""")
    ex("earnings", """
        CREATE TABLE earnings AS
        WITH l AS (
          SELECT l.*, pr.rate AS earning_rate,
                 l.amount::DECIMAL(38,4) * pr.rate AS x,
                 l.amount::DECIMAL(38,4) * l.usd_rate * pr.rate AS x_usd
          FROM lines0 l JOIN period_rates pr
            ON pr.program_id = l.program_id AND pr.partner_id = l.partner_id AND pr.lever = l.lever
           AND pr.tp_start = l.sale_tp_start
        ),
        c AS (
          SELECT l.*,
                 CASE WHEN transaction_type = 'refund' THEN sum(x) OVER w END AS cx,
                 CASE WHEN transaction_type = 'refund' THEN sum(x_usd) OVER w END AS cx_usd
          FROM l
          WINDOW w AS (PARTITION BY program_id, sale_id, transaction_type
                       ORDER BY delivery_date, transaction_date, transaction_id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        )
        SELECT program_id, partner_id, pa.partner_name, transaction_id, transaction_type,
               original_transaction_id, transaction_date, delivery_date,
               CASE WHEN on_time THEN plabel(period_kind, transaction_date)
                    ELSE plabel(period_kind, delivery_date) END AS earning_period,
               lever, earning_type, customer_id, product_id, product_family, quantity,
               amount AS transaction_amount, currency AS transaction_currency, usd_rate,
               transaction_amount_usd, earning_rate,
               CASE WHEN transaction_type = 'sale' THEN round_minor(x, mu)
                    ELSE round_minor(cx, mu) - round_minor(cx - x, mu) END AS earning_amount,
               CASE WHEN transaction_type = 'sale' THEN round(x_usd, 2)::DECIMAL(18,2)
                    ELSE round(cx_usd, 2)::DECIMAL(18,2) - round(cx_usd - x_usd, 2)::DECIMAL(18,2)
               END AS earning_amount_usd,
               CASE WHEN getvariable('run_date') >= (CASE WHEN on_time THEN pend(period_kind, transaction_date)
                    ELSE pend(period_kind, delivery_date) END) + 2 THEN 'final' ELSE 'estimated' END AS period_status,
               CASE WHEN on_time THEN NULL ELSE 'PRIOR_PERIOD' END AS reason_code
        FROM c JOIN partners pa USING (partner_id)""")
    ex("payout_groups", """
        CREATE TABLE payouts AS
        SELECT program_id, partner_id, any_value(partner_name) AS partner_name, earning_period,
               earning_type, sum(earning_amount_usd)::DECIMAL(18,2) AS earning_amount_usd,
               count(*) AS lines
        FROM earnings GROUP BY program_id, partner_id, earning_period, earning_type""")

    os.makedirs(a.out, exist_ok=True)
    t = time.time()
    for name, order in [
        ("earnings", "program_id, partner_id, transaction_date, transaction_id"),
        ("payouts", "program_id, partner_id, earning_period, earning_type"),
    ]:
        con.execute(f"COPY (SELECT * FROM {name} ORDER BY {order}) TO {q(os.path.join(a.out, name + '.csv'))} (HEADER)")
        con.execute(f"COPY (SELECT * FROM {name} ORDER BY {order}) TO {q(os.path.join(a.out, name + '.parquet'))} (FORMAT parquet)")
    if a.timings:
        print(f"  write: {time.time() - t:.2f}s", file=sys.stderr)
    n_e = con.execute("SELECT count(*), sum(earning_amount_usd) FROM earnings").fetchone()
    n_p = con.execute("SELECT count(*) FROM payouts").fetchone()[0]
    print(f"run_date {run_date}: {n_e[0]} earning lines, {n_p} payout groups, "
          f"total {n_e[1]} USD, {time.time() - t0:.2f}s")


if __name__ == "__main__":
    main()
