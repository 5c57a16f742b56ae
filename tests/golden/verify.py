#!/usr/bin/env python3
"""Independent check of the golden report files (Python's decimal; no code shared with the
crate). For each tests/golden/run_date=D folder it recomputes from the reports themselves and
the program files:

- every earnings line: transaction_amount_usd = amount x usd_rate (cents); for a sale
  earning_amount = amount x rate (currency minor unit) and earning_amount_usd = amount x usd_rate
  x rate (cents); for refunds the cumulative clawback round(C_k) - round(C_{k-1}) at the
  original's rate; all rounded half away from zero;
- tiered rates from the on-time period revenue of the lever;
- every payout group = the sum of its lines, statuses, the running-balance release, payout ids
  shared by the periods of one release, and payment dates;
- every dashboard total.

Usage: python3 tests/golden/verify.py   (exit 1 and a list of problems when anything is off)
"""
import csv, datetime as dt, os, sys, tomllib
from collections import defaultdict
from decimal import Decimal, ROUND_HALF_UP

ROOT = os.path.dirname(os.path.abspath(__file__))
PIPELINES = os.path.join(ROOT, "..", "..", "pipelines")
MINOR = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "JPY": 0, "KWD": 3}
problems = []


def rnd(x, digits):
    return x.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)  # half away from zero


def fmt(x, digits):
    s = f"{rnd(x, digits):.{digits}f}"
    return s[1:] if s.startswith("-") and Decimal(s) == 0 else s


def read(folder, name):
    with open(os.path.join(folder, f"{name}.csv"), newline="") as f:
        return list(csv.DictReader(f))


def period_of(d, kind):
    y, m = d.year, d.month
    if kind == "month":
        return f"{y}-{m:02d}", dt.date(y, m, 1)
    q = (m - 1) // 3
    return f"{y}-Q{q + 1}", dt.date(y, 3 * q + 1, 1)


def period_end(start, kind):
    months = 1 if kind == "month" else 3
    y, m = start.year + (start.month - 1 + months) // 12, (start.month - 1 + months) % 12 + 1
    return dt.date(y, m, 1) - dt.timedelta(days=1)


def add_months(d, n):
    y, m = d.year + (d.month - 1 + n) // 12, (d.month - 1 + n) % 12 + 1
    return dt.date(y, m, d.day)


def check(folder, run_date):
    programs = {}
    for name in os.listdir(PIPELINES):
        if name.endswith(".toml"):
            with open(os.path.join(PIPELINES, name), "rb") as f:
                p = tomllib.load(f)
            programs[p["id"]] = p
    earnings = read(folder, "earnings")
    lever_of = {(pid, l["name"]): l for pid, p in programs.items() for l in p["levers"]}

    # Tiers: on-time revenue per (program, partner, lever, transaction period).
    revenue = defaultdict(Decimal)
    for e in earnings:
        p = programs[e["program_id"]]
        tp = period_of(dt.date.fromisoformat(e["transaction_date"]), p["earning_period"])[0]
        if e["reason_code"] == "":
            revenue[(e["program_id"], e["partner_id"], e["lever"], tp)] += Decimal(e["transaction_amount_usd"])

    def expected_rate(e, tp):
        lever = lever_of[(e["program_id"], e["lever"])]
        rate = Decimal(lever["rate"])
        rev = revenue[(e["program_id"], e["partner_id"], e["lever"], tp)]
        for t in lever.get("tiers", []):
            if rev >= Decimal(t["min_period_revenue_usd"]):
                rate = Decimal(t["rate"])
        return rate

    sales = {(e["program_id"], e["transaction_id"]): e for e in earnings if e["transaction_type"] == "sale"}
    clawed = defaultdict(lambda: [Decimal(0), Decimal(0)])
    refunds = sorted((e for e in earnings if e["transaction_type"] == "refund"),
                     key=lambda e: (e["transaction_date"], e["transaction_id"]))
    for e in [e for e in earnings if e["transaction_type"] == "sale"] + refunds:
        where = f"{folder} earnings {e['program_id']}/{e['transaction_id']}"
        p = programs[e["program_id"]]
        amount, usd_rate, rate = Decimal(e["transaction_amount"]), Decimal(e["usd_rate"]), Decimal(e["earning_rate"])
        minor = MINOR[e["transaction_currency"]]
        if e["transaction_amount_usd"] != fmt(amount * usd_rate, 2):
            problems.append(f"{where}: transaction_amount_usd {e['transaction_amount_usd']} != {fmt(amount * usd_rate, 2)}")
        if e["transaction_type"] == "sale":
            tp = period_of(dt.date.fromisoformat(e["transaction_date"]), p["earning_period"])[0]
            want = (fmt(amount * rate, minor), fmt(amount * usd_rate * rate, 2))
        else:
            sale = sales[(e["program_id"], e["original_transaction_id"])]
            tp = period_of(dt.date.fromisoformat(sale["transaction_date"]), p["earning_period"])[0]
            if e["earning_rate"] != sale["earning_rate"]:
                problems.append(f"{where}: refund rate {e['earning_rate']} != original's {sale['earning_rate']}")
            c = clawed[(e["program_id"], e["original_transaction_id"])]
            before = (rnd(c[0], minor), rnd(c[1], 2))
            c[0] += amount * rate
            c[1] += amount * usd_rate * rate
            want = (fmt(rnd(c[0], minor) - before[0], minor), fmt(rnd(c[1], 2) - before[1], 2))
        if f"{expected_rate(e, tp):.8f}" != e["earning_rate"]:
            problems.append(f"{where}: earning_rate {e['earning_rate']} but tier gives {expected_rate(e, tp):.8f}")
        if (e["earning_amount"], e["earning_amount_usd"]) != want:
            problems.append(f"{where}: earnings {(e['earning_amount'], e['earning_amount_usd'])} != {want}")

    # Payout groups.
    payouts = read(folder, "payouts")
    group_sum = defaultdict(Decimal)
    for e in earnings:
        group_sum[(e["program_id"], e["partner_id"], e["earning_period"], e["earning_type"])] += Decimal(e["earning_amount_usd"])
    keys = set()
    for g in payouts:
        k = (g["program_id"], g["partner_id"], g["earning_period"], g["earning_type"])
        keys.add(k)
        if fmt(group_sum[k], 2) != g["earning_amount_usd"]:
            problems.append(f"{folder} payouts {k}: {g['earning_amount_usd']} != sum of lines {group_sum[k]}")
    if keys != set(group_sum):
        problems.append(f"{folder} payouts: groups {sorted(set(group_sum) ^ keys)} missing or extra")
    by_partner = defaultdict(list)
    for g in payouts:
        by_partner[(g["program_id"], g["partner_id"])].append(g)
    for (pid, partner), groups in by_partner.items():
        p = programs[pid]
        balance, pending = Decimal(0), []
        for g in sorted(groups, key=lambda g: g["earning_period"]):
            start = None
            y = int(g["earning_period"][:4])
            start = dt.date(y, int(g["earning_period"][5:]), 1) if p["earning_period"] == "month" else \
                dt.date(y, 3 * (int(g["earning_period"][6]) - 1) + 1, 1)
            closes = period_end(start, p["earning_period"]) + dt.timedelta(days=2)
            closed = run_date >= closes
            if g["earning_type"] == "coop":
                want = "available" if closed else "accruing"
                if g["status"] != want or g["payout_id"]:
                    problems.append(f"{folder} payouts {pid}/{partner}/{g['earning_period']} coop: {g['status']}")
                continue
            if not closed:
                if g["status"] != "accruing":
                    problems.append(f"{folder} payouts {pid}/{partner}/{g['earning_period']}: {g['status']} but open")
                continue
            balance += Decimal(g["earning_amount_usd"])
            pending.append(g)
            if balance >= Decimal(p["minimum_payout_usd"]):
                pay = add_months(dt.date(closes.year, closes.month, 15), p["payout_lag_months"]).isoformat()
                ids = {x["payout_id"] for x in pending}
                if len(ids) != 1 or "" in ids or any(x["payment_date"] != pay for x in pending) \
                        or any(x["status"] not in ("scheduled", "on_hold") for x in pending):
                    problems.append(f"{folder} payouts {pid}/{partner}: release at {g['earning_period']} not one payout paid {pay}")
                balance, pending = Decimal(0), []
        for x in pending:
            if x["status"] != "carried_forward" or x["payout_id"]:
                problems.append(f"{folder} payouts {pid}/{partner}/{x['earning_period']}: {x['status']} but not released")

    # Dashboard.
    status_of = {(g["program_id"], g["partner_id"], g["earning_period"], g["earning_type"]): g["status"] for g in payouts}
    for d in read(folder, "dashboard"):
        lines = [e for e in earnings if e["program_id"] == d["program_id"] and e["partner_id"] == d["partner_id"]]
        tot = defaultdict(Decimal)
        for e in lines:
            v = Decimal(e["earning_amount_usd"])
            tot["earned_to_date_usd"] += v
            tot["rebate_to_date_usd" if e["earning_type"] == "rebate" else "coop_to_date_usd"] += v
            st = status_of[(e["program_id"], e["partner_id"], e["earning_period"], e["earning_type"])]
            tot[{"scheduled": "scheduled_usd", "on_hold": "on_hold_usd", "carried_forward": "carried_forward_usd",
                 "accruing": "accruing_usd", "available": "coop_available_usd"}[st]] += v
        for col in ["earned_to_date_usd", "rebate_to_date_usd", "coop_to_date_usd", "scheduled_usd", "on_hold_usd",
                    "carried_forward_usd", "accruing_usd", "coop_available_usd"]:
            if d[col] != fmt(tot[col], 2):
                problems.append(f"{folder} dashboard {d['program_id']}/{d['partner_id']} {col}: {d[col]} != {fmt(tot[col], 2)}")
    return len(earnings)


checked = 0
for name in sorted(os.listdir(ROOT)):
    if name.startswith("run_date="):
        checked += check(os.path.join(ROOT, name), dt.date.fromisoformat(name[9:]))
for p in problems:
    print(p)
print(f"verify.py: {checked} earnings lines checked, {len(problems)} problems")
sys.exit(1 if problems or checked == 0 else 0)
