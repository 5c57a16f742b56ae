#!/usr/bin/env python3
"""DuckDB SQL peer of the incentives earnings rules (benchmark, issue 6).

usage: duckdb_rules.py LANDING PIPELINES RUN_DATE|latest OUT [--threads N] [--memory-limit 8GB]
                       [--timings] [--exports]

Computes, with set-based DuckDB SQL only, for every program in PIPELINES: the earnings lines,
the unearned sales with their reasons, the eligibility report, the payout groups per (program,
partner, booked period, earning type) with the rebate release walk (status, holds, payment
date), and the dashboard; writes OUT/{earnings,payouts,eligibility,unearned,dashboard}.{csv,parquet}.
With --exports it also writes the per-partner export folders under OUT/exports (not timed by
bench.py: see README.md in this folder).

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


def reasons_sql(keys):
    """SELECT over KEYS (partner_id, partner_type, d, p_start, p_end) adding `reasons` (every
    failing eligibility code on d, in the order of rules.md) and `eligible_since` (start of the
    eligible stretch containing d, NULL when not eligible): the intersection of the islands
    containing d of each requirement, no earlier than p_start."""
    def isl(alias, kind):
        return (f"LEFT JOIN islands {alias} ON {alias}.partner_id = k.partner_id AND {alias}.kind = '{kind}' "
                f"AND k.d BETWEEN {alias}.sd AND {alias}.ed")
    return f"""
        SELECT r.* EXCLUDE (s_net, s_dist, s_res, s_reg, s_inv, s_comp),
               CASE WHEN len(r.reasons) = 0 THEN greatest(r.p_start, r.s_net, r.s_dist, r.s_res, r.s_reg, r.s_inv, r.s_comp) END
                 AS eligible_since
        FROM (
          SELECT k.partner_id, k.partner_type, k.d, k.p_start, k.p_end,
                 list_filter([
                   CASE WHEN k.d < k.p_start OR k.d > k.p_end THEN 'OUTSIDE_PROGRAM_PERIOD' END,
                   CASE WHEN n.sd IS NULL THEN 'NO_NETWORK_AGREEMENT' END,
                   CASE WHEN k.partner_type = 'indirect_provider' AND ds.sd IS NULL THEN 'NO_DISTRIBUTOR_AGREEMENT' END,
                   CASE WHEN k.partner_type = 'direct_reseller' AND rs.sd IS NULL THEN 'NO_RESELLER_AGREEMENT' END,
                   CASE WHEN k.partner_type = 'indirect_reseller' AND NOT coalesce(pa.registered_on <= k.d, false)
                        THEN 'NOT_NETWORK_REGISTERED' END,
                   CASE WHEN k.partner_type = 'indirect_reseller' AND NOT coalesce(fs.first_sale < k.d, false)
                        THEN 'NOT_INVITED' END,
                   CASE WHEN cp.sd IS NULL THEN 'NO_COMPETENCY' END], lambda x: x IS NOT NULL) AS reasons,
                 n.sd AS s_net,
                 CASE WHEN k.partner_type = 'indirect_provider' THEN ds.sd END AS s_dist,
                 CASE WHEN k.partner_type = 'direct_reseller' THEN rs.sd END AS s_res,
                 CASE WHEN k.partner_type = 'indirect_reseller' THEN pa.registered_on END AS s_reg,
                 CASE WHEN k.partner_type = 'indirect_reseller' THEN fs.first_sale + 1 END AS s_inv,
                 cp.sd AS s_comp
          FROM ({keys}) k
          JOIN partners pa ON pa.partner_id = k.partner_id
          LEFT JOIN first_sale fs ON fs.partner_id = k.partner_id
          {isl('n', 'partner_network')}
          {isl('ds', 'cloud_distributor')}
          {isl('rs', 'cloud_reseller')}
          {isl('cp', 'competency')}
        ) r"""


EXPORTED = [
    ("earnings", "program_id, partner_id, transaction_date, transaction_id"),
    ("unearned", "program_id, partner_id, transaction_date, transaction_id"),
    ("payouts", "program_id, partner_id, earning_period, earning_type"),
    ("dashboard", "program_id, partner_id"),
]
ADMIN_FILES = ["access.csv", "dashboard.csv", "earnings.csv", "payouts.csv", "unearned.csv"]


def write_exports(con, landing, run_date, root, lists, timings):
    """The per-partner export folders of reports.md, as a data team would write them with DuckDB.

    One partitioned COPY per report (`PARTITION_BY (partner_id)`, rows in the report's order,
    so DuckDB writes `partner_id=<id>/<report>0.csv`), then one pass over the accepted partners
    in Python: each file renamed to its contract name, and a header-only file made for every
    report without rows for that partner (a partitioned COPY makes no folder for them). Partner
    ids are not percent-encoded (the generated ids need none)."""
    files = deliveries(landing, "users", run_date)
    newest = max((d for d, _ in files), default=None)
    users = [p for d, p in files if d == newest]
    if users:
        con.execute(f"CREATE TABLE users AS SELECT user_id, partner_id, role FROM read_parquet({sql_list(users)})")
    else:
        con.execute("CREATE TABLE users (user_id VARCHAR, partner_id VARCHAR, role VARCHAR)")
    headers = {}
    for name, order in EXPORTED + [("access", "partner_id, user_id, file")]:
        if name == "access":
            files_sql = "(VALUES " + ", ".join(f"({q(f)})" for f in ADMIN_FILES) + ") f(file)"
            sel = (f"SELECT u.partner_id, u.user_id, u.role, f.file FROM users u "
                   f"JOIN partners p USING (partner_id) CROSS JOIN {files_sql} "
                   "WHERE u.role = 'incentive_admin' OR f.file <> 'payouts.csv'")
        else:
            rep = ", ".join(f"NULLIF(array_to_string({c}, ';'), '') AS {c}" for c in lists.get(name, []))
            sel = f"SELECT {'* REPLACE (' + rep + ')' if rep else '*'} FROM {name}"
        headers[name] = ",".join(d[0] for d in con.execute(f"SELECT * FROM ({sel}) LIMIT 0").description) + "\n"
        # ORDER_BY sorts each written file (an ORDER BY in the query is not kept by a
        # partitioned COPY: checked, a partner's rows came out of order).
        t = time.time()
        con.execute(f"COPY ({sel}) TO {q(root)} (FORMAT csv, HEADER, "
                    f"PARTITION_BY (partner_id), ORDER_BY ({order}), WRITE_PARTITION_COLUMNS true, "
                    f"FILENAME_PATTERN {q(name)}, OVERWRITE_OR_IGNORE)")
        if timings:
            print(f"    export {name}: {time.time() - t:.2f}s", file=sys.stderr)
    for (pid,) in con.execute("SELECT partner_id FROM partners ORDER BY partner_id").fetchall():
        folder = os.path.join(root, f"partner_id={pid}")
        os.makedirs(folder, exist_ok=True)
        have = set(os.listdir(folder))
        for name, header in headers.items():
            parts = [f for f in have if f.startswith(name) and f != name + ".csv"]
            target = os.path.join(folder, name + ".csv")
            if not parts:
                with open(target, "w") as f:
                    f.write(header)
            elif len(parts) == 1:
                os.rename(os.path.join(folder, parts[0]), target)
            else:
                # Several files of one partition are each sorted, not sorted together: joining
                # them would need a merge. Not seen so far; say so rather than write a wrong file.
                sys.exit(f"exports: DuckDB wrote {len(parts)} files for {name} of partner {pid}: {sorted(parts)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("landing")
    ap.add_argument("pipelines")
    ap.add_argument("run_date", help="YYYY-MM-DD, or 'latest' for the newest transactions delivery")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--memory-limit")
    ap.add_argument("--timings", action="store_true")
    ap.add_argument("--exports", action="store_true",
                    help="also write the per-partner export folders (not in the timed bench: see README)")
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
    # data_as_of: newest delivery date among the files read (newest snapshot of each snapshot
    # feed, every event delivery up to the run date).
    read_dates = []
    for feed in SNAPSHOTS + ["users", "transactions", "fx_rates"]:
        read_dates += [d for d, _ in deliveries(a.landing, feed, run_date)]
    data_as_of = max(read_dates) if read_dates else None
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
    # Eligibility islands: overlapping or adjacent intervals of one kind merged (gaps and
    # islands), so that "active on d" is a join on the island containing d, and the island's
    # start gives eligible_since.
    ex("islands", """
        CREATE TABLE islands AS
        WITH a AS (
          SELECT partner_id, agreement_type AS kind, sd, coalesce(ed, DATE '9999-12-31') AS ed FROM agreements
          UNION ALL
          SELECT partner_id, 'competency', sd, coalesce(ed, DATE '9999-12-31') FROM competencies
        ),
        b AS (SELECT *, max(ed) OVER (PARTITION BY partner_id, kind ORDER BY sd, ed
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_max FROM a),
        c AS (SELECT *, sum(CASE WHEN prev_max IS NULL OR sd > prev_max + 1 THEN 1 ELSE 0 END)
                          OVER (PARTITION BY partner_id, kind ORDER BY sd, ed ROWS UNBOUNDED PRECEDING) AS island FROM b)
        SELECT partner_id, kind, min(sd) AS sd, max(ed) AS ed FROM c GROUP BY partner_id, kind, island""")
    # Sale keys (partner, type, date) with every failing code of that date.
    ex("sale_reasons", f"""
        CREATE TABLE sale_keys AS
        {reasons_sql("SELECT DISTINCT partner_id, partner_type, transaction_date AS d, "
                     "DATE '0001-01-01' AS p_start, DATE '9999-12-31' AS p_end FROM csales")}""")
    ex("eligible_sales", """
        CREATE TABLE esales AS
        SELECT s.* FROM csales s
        SEMI JOIN sale_keys k ON k.partner_id = s.partner_id AND k.partner_type = s.partner_type
                             AND k.d = s.transaction_date AND len(k.reasons) = 0""")
    ex("unearned", """
        CREATE TABLE unearned AS
        SELECT getvariable('run_date') AS run_date, s.program_id, s.partner_id, s.transaction_id,
               s.transaction_date, s.lever, s.amount AS transaction_amount,
               s.currency AS transaction_currency, k.reasons
        FROM csales s
        JOIN sale_keys k ON k.partner_id = s.partner_id AND k.partner_type = s.partner_type
                        AND k.d = s.transaction_date AND len(k.reasons) > 0""")
    ex("eligibility", f"""
        CREATE TABLE eligibility AS
        WITH r AS ({reasons_sql("SELECT DISTINCT pa.partner_id, pa.partner_type, getvariable('run_date') AS d, "
                                "p.pstart AS p_start, p.pend AS p_end FROM programs p "
                                "JOIN partners pa ON pa.partner_type = p.partner_type")}),
        act AS (
          SELECT DISTINCT 'reseller' AS role, reseller_id AS partner_id FROM tx
          WHERE transaction_type = 'sale' AND transaction_date BETWEEN getvariable('run_date') - 364 AND getvariable('run_date')
          UNION ALL
          SELECT DISTINCT 'provider', provider_id FROM tx
          WHERE transaction_type = 'sale' AND provider_id IS NOT NULL
            AND transaction_date BETWEEN getvariable('run_date') - 364 AND getvariable('run_date')
        )
        SELECT getvariable('run_date') AS run_date, p.program_id, pa.partner_id, pa.partner_name, pa.partner_type,
               len(r.reasons) = 0 AS eligible, r.reasons, r.eligible_since,
               CASE WHEN pa.partner_type = 'indirect_reseller' THEN fs.first_sale + 1 END AS invited_on,
               act.partner_id IS NOT NULL AS active_reseller
        FROM programs p
        JOIN partners pa ON pa.partner_type = p.partner_type
        JOIN r ON r.partner_id = pa.partner_id AND r.p_start = p.pstart AND r.p_end = p.pend
        LEFT JOIN first_sale fs ON fs.partner_id = pa.partner_id
        LEFT JOIN act ON act.partner_id = pa.partner_id
             AND act.role = CASE WHEN p.partner_type = 'indirect_provider' THEN 'provider' ELSE 'reseller' END""")

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
               CASE WHEN on_time THEN NULL ELSE 'PRIOR_PERIOD' END AS reason_code,
               CASE WHEN on_time THEN pend(period_kind, transaction_date)
                    ELSE pend(period_kind, delivery_date) END AS booked_period_end
        FROM c JOIN partners pa USING (partner_id)""")
    ex("payout_groups", """
        CREATE TABLE groups AS
        SELECT program_id, partner_id, any_value(partner_name) AS partner_name, earning_period,
               earning_type, sum(earning_amount_usd)::DECIMAL(18,2) AS earning_amount_usd,
               count(*) AS lines, any_value(booked_period_end) AS bp_end,
               getvariable('run_date') >= any_value(booked_period_end) + 2 AS closed
        FROM earnings GROUP BY program_id, partner_id, earning_period, earning_type""")
    # Release walk: closed rebate groups of a (program, partner) in period order; the running
    # balance restarts after each release. A recursive CTE, one step per period (set-based over
    # all partners at once).
    ex("release_walk", """
        CREATE TABLE walk AS
        WITH RECURSIVE rw AS (
          SELECT g.program_id, g.partner_id, g.earning_period, g.earning_amount_usd AS amt, g.bp_end,
                 p.minimum_usd, row_number() OVER (PARTITION BY g.program_id, g.partner_id ORDER BY g.bp_end) AS rn
          FROM groups g JOIN programs p USING (program_id)
          WHERE g.earning_type = 'rebate' AND g.closed
        ),
        w AS (
          SELECT program_id, partner_id, rn, amt AS bal, amt >= minimum_usd AS released FROM rw WHERE rn = 1
          UNION ALL
          SELECT rw.program_id, rw.partner_id, rw.rn,
                 CASE WHEN w.released THEN 0 ELSE w.bal END + rw.amt AS bal,
                 CASE WHEN w.released THEN 0 ELSE w.bal END + rw.amt >= rw.minimum_usd AS released
          FROM w JOIN rw ON rw.program_id = w.program_id AND rw.partner_id = w.partner_id AND rw.rn = w.rn + 1
        ),
        r AS (
          SELECT rw.program_id, rw.partner_id, rw.earning_period, rw.rn, w.bal, w.released,
                 min(CASE WHEN w.released THEN rw.bp_end END) OVER (
                   PARTITION BY rw.program_id, rw.partner_id ORDER BY rw.rn DESC ROWS UNBOUNDED PRECEDING) AS release_end
          FROM rw JOIN w USING (program_id, partner_id, rn)
        )
        SELECT * FROM r""")
    ex("payouts", """
        CREATE TABLE payouts AS
        WITH pp AS (
          SELECT partner_id, lower(trim(bank_verified)) = 'true' AS bank_ok,
                 lower(trim(tax_verified)) = 'true' AS tax_ok FROM raw_payment_profiles
        ),
        g AS (
          SELECT g.*, w.release_end,
                 CASE WHEN w.release_end IS NOT NULL THEN
                   (date_trunc('month', w.release_end + 2) + to_months(p.lag) + INTERVAL 14 DAY)::DATE END AS pay_date,
                 list_filter([CASE WHEN pp.partner_id IS NULL THEN 'NO_PAYMENT_PROFILE' END,
                              CASE WHEN NOT pp.bank_ok THEN 'BANK_NOT_VERIFIED' END,
                              CASE WHEN NOT pp.tax_ok THEN 'TAX_NOT_VERIFIED' END], lambda x: x IS NOT NULL) AS holds
          FROM groups g JOIN programs p USING (program_id)
          LEFT JOIN walk w ON g.earning_type = 'rebate' AND w.program_id = g.program_id
                          AND w.partner_id = g.partner_id AND w.earning_period = g.earning_period
          LEFT JOIN pp ON pp.partner_id = g.partner_id
        ),
        s AS (
          SELECT *, CASE
                 WHEN earning_type = 'coop' THEN CASE WHEN closed THEN 'available' ELSE 'accruing' END
                 WHEN NOT closed THEN 'accruing'
                 WHEN release_end IS NULL THEN 'carried_forward'
                 WHEN len(holds) > 0 THEN 'on_hold'
                 ELSE 'scheduled' END AS status
          FROM g
        )
        SELECT getvariable('run_date') AS run_date, program_id, partner_id, partner_name, earning_period,
               earning_type, earning_amount_usd, status,
               CASE WHEN status = 'on_hold' THEN holds ELSE []::VARCHAR[] END AS hold_reasons,
               NULL::VARCHAR AS payout_id,
               CASE WHEN status IN ('on_hold', 'scheduled') THEN pay_date END AS payment_date,
               lines
        FROM s""")
    ex("dashboard", f"""
        CREATE TABLE dashboard AS
        WITH m AS (
          SELECT program_id, partner_id,
                 sum(earning_amount_usd) AS earned,
                 sum(earning_amount_usd) FILTER (WHERE earning_type = 'rebate') AS rebate,
                 sum(earning_amount_usd) FILTER (WHERE earning_type = 'coop') AS coop,
                 sum(earning_amount_usd) FILTER (WHERE status = 'scheduled') AS scheduled,
                 sum(earning_amount_usd) FILTER (WHERE status = 'on_hold') AS on_hold,
                 sum(earning_amount_usd) FILTER (WHERE status = 'carried_forward') AS carried,
                 sum(earning_amount_usd) FILTER (WHERE status = 'accruing') AS accruing,
                 sum(earning_amount_usd) FILTER (WHERE status = 'available') AS available
          FROM payouts GROUP BY ALL
        ),
        lt AS (
          SELECT program_id, partner_id, max(d) AS last_d FROM (
            SELECT program_id, partner_id, transaction_date AS d FROM csales
            UNION ALL
            SELECT s.program_id, s.partner_id, r.transaction_date FROM tx r
            JOIN csales s ON r.transaction_type = 'refund' AND r.original_transaction_id = s.transaction_id
          ) GROUP BY ALL
        )
        SELECT e.run_date, e.program_id, e.partner_id, e.partner_name, e.eligible, e.reasons,
               coalesce(m.earned, 0)::DECIMAL(18,2) AS earned_to_date_usd,
               coalesce(m.rebate, 0)::DECIMAL(18,2) AS rebate_to_date_usd,
               coalesce(m.coop, 0)::DECIMAL(18,2) AS coop_to_date_usd,
               coalesce(m.scheduled, 0)::DECIMAL(18,2) AS scheduled_usd,
               coalesce(m.on_hold, 0)::DECIMAL(18,2) AS on_hold_usd,
               coalesce(m.carried, 0)::DECIMAL(18,2) AS carried_forward_usd,
               coalesce(m.accruing, 0)::DECIMAL(18,2) AS accruing_usd,
               coalesce(m.available, 0)::DECIMAL(18,2) AS coop_available_usd,
               lt.last_d AS last_transaction_date,
               {'DATE ' + q(data_as_of) if data_as_of else 'NULL::DATE'} AS data_as_of
        FROM eligibility e
        LEFT JOIN m USING (program_id, partner_id)
        LEFT JOIN lt USING (program_id, partner_id)""")

    os.makedirs(a.out, exist_ok=True)
    t = time.time()
    lists = {"payouts": ["hold_reasons"], "eligibility": ["reasons"], "unearned": ["reasons"],
             "dashboard": ["reasons"]}
    for name, order in [
        ("earnings", "program_id, partner_id, transaction_date, transaction_id"),
        ("payouts", "program_id, partner_id, earning_period, earning_type"),
        ("eligibility", "program_id, partner_id"),
        ("unearned", "program_id, partner_id, transaction_date, transaction_id"),
        ("dashboard", "program_id, partner_id"),
    ]:
        rep = ", ".join(f"NULLIF(array_to_string({c}, ';'), '') AS {c}" for c in lists.get(name, []))
        csv_sel = f"* REPLACE ({rep})" if rep else "*"
        con.execute(f"COPY (SELECT {csv_sel} FROM {name} ORDER BY {order}) TO {q(os.path.join(a.out, name + '.csv'))} (HEADER)")
        con.execute(f"COPY (SELECT * FROM {name} ORDER BY {order}) TO {q(os.path.join(a.out, name + '.parquet'))} (FORMAT parquet)")
    if a.timings:
        print(f"  write: {time.time() - t:.2f}s", file=sys.stderr)
    if a.exports:
        t = time.time()
        write_exports(con, a.landing, run_date, os.path.join(a.out, "exports"), lists, a.timings)
        if a.timings:
            print(f"  exports: {time.time() - t:.2f}s", file=sys.stderr)
    n_e = con.execute("SELECT count(*), sum(earning_amount_usd) FROM earnings").fetchone()
    n_p = con.execute("SELECT count(*) FROM payouts").fetchone()[0]
    print(f"run_date {run_date}: {n_e[0]} earning lines, {n_p} payout groups, "
          f"total {n_e[1]} USD, {time.time() - t0:.2f}s")


if __name__ == "__main__":
    main()
