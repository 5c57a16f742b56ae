#!/usr/bin/env python3
"""Writes sample_data/landing: the small landing zone behind the README's first command and the
end-to-end tests. Deterministic (fixed seed); re-run it only to change the sample on purpose,
then re-check the golden files. Needs pyarrow for the one parquet delivery.

What is in it (see sample_data/README.md): 30 partners of the three types, four monthly
snapshots, transactions delivered from July to the start of November 2026 in USD, EUR, GBP,
CAD, JPY (0 minor digits) and KWD (3), refunds, late lines, and hand-placed bad rows.
"""
import csv, datetime, gzip, io, os, random, shutil
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "landing")
rng = random.Random(2027)

def write_csv(path, header, rows, bom=False, gz=False):
    full = os.path.join(ROOT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        if isinstance(r, str):  # a raw line, written as is (bad records)
            buf.write(r + "\n")
        else:
            w.writerow(r)
    data = ("\ufeff" if bom else "") + buf.getvalue()
    if gz:
        with gzip.GzipFile(full, "wb", mtime=0) as f:
            f.write(data.encode())
    else:
        with open(full, "w", newline="") as f:
            f.write(data)

if os.path.exists(ROOT):
    shutil.rmtree(ROOT)

COUNTRY_CCY = {"US": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR", "CA": "CAD", "JP": "JPY", "KW": "KWD"}
countries = list(COUNTRY_CCY)

# ---- partners ---------------------------------------------------------------------------
partners = []
for i in range(1, 13):
    partners.append([f"DR{i:02d}", f"Direct Reseller {i:02d} Ltd", countries[i % 7], "direct_reseller", "2025-03-01"])
for i in range(1, 5):
    partners.append([f"IP{i:02d}", f"Distributor {i:02d} GmbH", countries[(i + 2) % 7], "indirect_provider", "2024-11-15"])
for i in range(1, 13):
    reg = "2026-06-01"
    if i == 5: reg = "2026-08-15"      # registers mid-year
    if i == 6: reg = ""                # never registers
    partners.append([f"IR{i:02d}", f"Indirect Reseller {i:02d}", countries[(i + 4) % 7], "indirect_reseller", reg])
partners.append(["DR13", "=HYPERLINK(\"x\")", "US", "direct_reseller", "2025-03-01"])  # formula-looking name
partners.append(["IR13", "Reseller, with comma", "FR", "indirect_reseller", "2026-06-01"])
HEADER_P = ["partner_id", "partner_name", "country_code", "partner_type", "network_registered_on"]
bad_partners = [
    ["DR90", "Bad Country Co", "XX", "direct_reseller", ""],          # BAD_COUNTRY
    ["DR91", "Bad Type Co", "US", "reseller", ""],                    # BAD_ENUM
]
write_csv("partners/2026-07-01.csv", HEADER_P, partners + bad_partners, bom=True)
# September snapshot: IR12 arrives (late partner), DR12 renamed, same bad rows fixed
sep = [p[:] for p in partners]
sep[11][1] = "Direct Reseller 12 Holdings"
sep.append(["IR14", "Late Partner Pty", "US", "indirect_reseller", "2026-09-01"])
write_csv("partners/2026-09-01.csv", HEADER_P, sep + [["DR90", "Bad Country Co", "US", "direct_reseller", ""]])

# ---- agreements -------------------------------------------------------------------------
def agreements(snapshot):
    rows, n = [], 0
    for p in snapshot:
        pid, ptype = p[0], p[3]
        if pid in ("DR90", "DR91"): continue
        n += 1
        if pid != "DR10":  # DR10 has no partner-network agreement
            rows.append([f"AG{n:03d}N", pid, "partner_network", "2025-01-01", ""])
        if ptype == "direct_reseller":
            end = "2026-08-20" if pid == "DR03" else ""   # DR03's reseller agreement ends mid-August
            rows.append([f"AG{n:03d}R", pid, "cloud_reseller", "2025-01-01", end])
        if ptype == "indirect_provider" and pid != "IP04":  # IP04 lacks a distributor agreement
            rows.append([f"AG{n:03d}D", pid, "cloud_distributor", "2025-01-01", ""])
    return rows
HEADER_A = ["agreement_id", "partner_id", "agreement_type", "start_date", "end_date"]
write_csv("agreements/2026-07-01.csv.gz", HEADER_A,
          agreements(partners) + [["AG900", "DR01", "cloud_reseller", "2026-05-01", "2026-04-30"],  # BAD_DATE_RANGE
                                  ["AG901", "ZZ99", "partner_network", "2025-01-01", ""]], gz=True)  # UNKNOWN_PARTNER
write_csv("agreements/2026-09-01.csv.gz", HEADER_A, agreements(sep), gz=True)

# ---- competencies -------------------------------------------------------------------------
def competencies(snapshot):
    rows = []
    for p in snapshot:
        pid = p[0]
        if pid in ("DR90", "DR91", "DR11"): continue  # DR11 holds no competency
        if pid == "DR04":  # a gap: none active in August
            rows.append([pid, "cloud_platform", "silver", "2025-01-01", "2026-07-31"])
            rows.append([pid, "cloud_platform", "gold", "2026-09-01", ""])
            continue
        rows.append([pid, rng.choice(["cloud_platform", "modern_work", "security"]), rng.choice(["gold", "silver"]), "2025-06-01", ""])
    return rows
HEADER_C = ["partner_id", "competency", "level", "start_date", "end_date"]
comp = competencies(partners)
write_csv("competencies/2026-07-01.csv", HEADER_C, comp + [comp[0][:]])  # DUPLICATE_ROW
write_csv("competencies/2026-09-01.csv", HEADER_C, competencies(sep))

# ---- users ----------------------------------------------------------------------------------
HEADER_U = ["user_id", "partner_id", "role"]
users = []
for p in sep:
    pid = p[0]
    if pid in ("DR90", "DR91", "IR08"): continue  # IR08 has no users
    users.append([f"admin@{pid.lower()}.example", pid, "incentive_admin"])
    if int(pid[2:]) % 2 == 0:
        users.append([f"sales@{pid.lower()}.example", pid, "incentive_user"])
write_csv("users/2026-07-01.csv", HEADER_U, users + [["boss@dr01.example", "DR01", "global_admin"]])  # UNKNOWN_ROLE

# ---- payment profiles ----------------------------------------------------------------------
HEADER_PP = ["partner_id", "payout_currency", "bank_verified", "tax_verified"]
profiles = []
for p in sep:
    pid = p[0]
    if pid in ("DR90", "DR91", "DR02"): continue  # DR02 has no payment profile
    profiles.append([pid, COUNTRY_CCY[p[2]] if p[2] != "KW" else "USD",
                     "false" if pid == "DR05" else "true", "false" if pid in ("DR06", "IP02") else "true"])
write_csv("payment_profiles/2026-07-01.csv", HEADER_PP, profiles + [["DR07", "USD", "yes", "true"]])  # BAD_BOOL + dup key

# ---- exchange rates -------------------------------------------------------------------------
BASE = {"EUR": Decimal("1.08"), "GBP": Decimal("1.27"), "CAD": Decimal("0.73"), "JPY": Decimal("0.0067"), "KWD": Decimal("3.25")}
HEADER_FX = ["currency", "month", "usd_rate"]
for m in ["07", "08", "09", "10", "11"]:
    rows = []
    for c, b in BASE.items():
        rate = (b * (Decimal(1) + Decimal(rng.randint(-200, 200)) / Decimal(10000))).quantize(Decimal("0.00000001"))
        rows.append([c, f"2026-{m}", str(rate)])
    rows.append(["USD", f"2026-{m}", "1.00000000"])
    if m == "08":
        rows.append(["EUR", "2026-8", "1.1"])       # BAD_DATE
        rows.append(["GBP", "2026-08", "0"])        # OUT_OF_RANGE
    write_csv(f"fx_rates/2026-{m}-01.csv", HEADER_FX, rows)

# ---- transactions ---------------------------------------------------------------------------
HEADER_T = ["transaction_id", "transaction_date", "transaction_type", "original_transaction_id",
            "reseller_id", "provider_id", "customer_id", "product_id", "product_family",
            "quantity", "amount", "currency"]
ccy_of = {p[0]: COUNTRY_CCY[p[2]] for p in sep}
families = ["modern_work", "dynamics", "azure", "security"]
SCALE = {"JPY": 150, "KWD": Decimal("0.31")}
tid = 0
sales = []

def sale(day, reseller, provider, family=None, amount=None):
    global tid
    tid += 1
    ccy = ccy_of[provider or reseller]
    fam = family or rng.choice(families)
    if amount is None:
        usd = Decimal(rng.randint(500, 60000)) + Decimal(rng.randint(0, 9999)) / Decimal(10000)
        if ccy == "JPY": amount = str(int(usd * 150))
        elif ccy == "KWD": amount = str((usd * Decimal("0.31")).quantize(Decimal("0.001")))
        else: amount = str(usd.quantize(Decimal("0.01")))
    row = [f"T{tid:05d}", day, "sale", "", reseller, provider or "", f"C{rng.randint(1, 40):03d}",
           f"SKU-{fam[:3].upper()}-{rng.randint(1, 9)}", fam, str(rng.randint(1, 50)), amount, ccy]
    sales.append(row)
    return row

def refund(of, day, amount):
    global tid
    tid += 1
    return [f"T{tid:05d}", day, "refund", of[0], of[4], of[5], of[6], of[7], of[8], of[9], amount, of[11]]

direct = [p[0] for p in sep if p[3] == "direct_reseller" and p[0] not in ("DR90", "DR91")]
resellers = [p[0] for p in sep if p[3] == "indirect_reseller" and p[0] != "IR14"]
providers = ["IP01", "IP02", "IP03", "IP04"]

def day_batch(day, n):
    rows = []
    for _ in range(n):
        if rng.random() < 0.5:
            rows.append(sale(day, rng.choice(direct), None))
        else:
            rows.append(sale(day, rng.choice(resellers), rng.choice(providers)))
    return rows

files = {}
files["2026-07-15.csv"] = day_batch("2026-07-1%d" % rng.randint(0, 5), 12)
files["2026-07-31.csv"] = day_batch("2026-07-30", 10)
# an exact half cent: 1000.1250 USD x 0.04 = 40.005 -> 40.01 (DR07 is in the US)
files["2026-07-31.csv"].append(sale("2026-07-31", "DR07", None, "modern_work", "1000.1250"))
jp = [p[0] for p in sep if p[2] == "JP" and p[3] == "direct_reseller"][0]
kw = [p[0] for p in sep if p[2] == "KW" and p[3] == "direct_reseller"][0]
# exact halves of the minor unit: 1000012.5 JPY x 0.04 = 40000.5 -> 40001 JPY;
# 1234.5625 KWD x 0.04 = 49.3825 -> 49.383 KWD
files["2026-08-01.csv"] = day_batch("2026-07-31", 4) + [sale("2026-07-31", jp, None, "modern_work", "1000012.5"),
                                                        sale("2026-07-31", kw, None, "dynamics", "1234.5625")]
aug = day_batch("2026-08-10", 14)
big = sale("2026-08-12", "DR01", None, "modern_work", "9000.00")
aug.append(big)
files["2026-08-16.csv.gz"] = aug
aug2 = day_batch("2026-08-28", 10)
# two partial refunds that net the big sale to exactly zero (one now, one in September)
aug2.append(refund(big, "2026-08-30", "-4500.0000"))
files["2026-08-31.csv"] = aug2
sep_rows = day_batch("2026-09-14", 14)
sep_rows.append(refund(big, "2026-09-14", "-4500.00"))
files["2026-09-15.parquet"] = sep_rows
sep2 = day_batch("2026-09-29", 12) + [sale("2026-09-29", "IR14", "IP01", "modern_work", "2500.00")]
files["2026-09-30.csv"] = sep2
# a line of September delivered after September closed: booked to October (PRIOR_PERIOD)
oct1 = day_batch("2026-10-01", 8) + [sale("2026-09-28", "DR05", None, "azure", "15000.00")]
files["2026-10-03.csv"] = oct1
files["2026-10-15.csv"] = day_batch("2026-10-14", 14)
files["2026-10-31.csv"] = day_batch("2026-10-30", 12)
nov = day_batch("2026-11-01", 6)
ir5_first = sale("2026-08-20", "IR05", "IP03", "modern_work", "800.00")  # a late first sale
nov.append(ir5_first)
files["2026-11-01.csv"] = nov

# deliberate bad rows, each with one problem (and one row with three)
s0 = files["2026-07-15.csv"][0]
bad = [
    ["TBAD01", "2026-07-32", "sale", "", "DR01", "", "C001", "SKU-MOD-1", "modern_work", "1", "100.00", "USD"],   # BAD_DATE
    ["TBAD02", "2026-07-12", "sale", "", "DR01", "", "C001", "SKU-MOD-1", "modern_work", "1", "1,000.00", "USD"], # BAD_DECIMAL
    ["TBAD03", "2026-07-12", "sale", "", "DR01", "", "C001", "SKU-MOD-1", "modern_work", "2.5", "100.00", "USD"], # BAD_INTEGER
    ["TBAD04", "2026-07-12", "sale", "", "NOPE1", "", "C001", "SKU-MOD-1", "modern_work", "1", "100.00", "USD"],  # UNKNOWN_PARTNER
    ["TBAD05", "2026-07-12", "sale", "", "DR01", "", "C001", "SKU-MOD-1", "modern_work", "1", "100.00", "CHF"],   # NO_FX_RATE
    ["TBAD06", "2026-07-12", "sale", "", "DR01", "", "C001", "SKU-MOD-1", "modern_work", "1", "100.00", "usd"],   # BAD_CURRENCY
    ["TBAD07", "2026-07-12", "refund", "T99999", "DR01", "", "C001", "SKU-MOD-1", "modern_work", "1", "-10.00", "USD"],  # UNKNOWN_ORIGINAL
    ["TBAD08", "2026-07-12", "sale", "", "", "", "", "SKU-MOD-1", "modern_work", "0", "100.00", "USD"],          # 2x MISSING_VALUE + OUT_OF_RANGE
    ["TBAD09", "2026-07-12", "sale", "T00001", "DR01", "", "C001", "SKU-MOD-1", "modern_work", "1", "100.00", "USD"],  # UNEXPECTED_VALUE
    ["TBAD10", "2026-07-16", "sale", "", "DR01", "", "C001", "SKU-MOD-1", "modern_work", "1", "100.00", "USD"],   # FUTURE_DATE
    ["TBAD11", "2026-07-12", "return", "", "DR01", "", "C001", "SKU-MOD-1", "modern_work", "1", "100.00", "USD"], # BAD_ENUM
    "TBAD12,2026-07-12,sale,,DR01",                                                                                # BAD_RECORD
]
files["2026-07-15.csv"] += bad
# re-deliveries: an identical copy (DUPLICATE_ROW) and a changed copy (CONFLICTING_DUPLICATE)
files["2026-08-16.csv.gz"].append(s0[:])
changed = s0[:]; changed[10] = "1.00"
files["2026-08-16.csv.gz"].append(changed)
# refund problems
files["2026-08-31.csv"].append(refund(s0, "2026-08-29", "-999999.00"))        # REFUND_EXCEEDS_SALE
mism = refund(s0, "2026-08-29", "-1.00"); mism[7] = "SKU-OTHER"
files["2026-08-31.csv"].append(mism)                                            # REFUND_MISMATCH
files["2026-08-31.csv"].append(["TBAD20", "2026-08-29", "refund", "", "DR01", "", "C001", "SKU-MOD-1", "modern_work", "1", "-5.00", "USD"])  # MISSING original

for name, rows in files.items():
    if name.endswith(".parquet"):
        cols = list(zip(*rows))
        table = pa.table({
            "transaction_id": pa.array(cols[0], pa.string()),
            "transaction_date": pa.array([datetime.date.fromisoformat(d) for d in cols[1]], pa.date32()),
            "transaction_type": pa.array(cols[2], pa.string()),
            "original_transaction_id": pa.array([v or None for v in cols[3]], pa.string()),
            "reseller_id": pa.array(cols[4], pa.string()),
            "provider_id": pa.array([v or None for v in cols[5]], pa.string()),
            "customer_id": pa.array(cols[6], pa.string()),
            "product_id": pa.array(cols[7], pa.string()),
            "product_family": pa.array(cols[8], pa.string()),
            "quantity": pa.array([int(q) for q in cols[9]], pa.int64()),
            "amount": pa.array([Decimal(a).quantize(Decimal("0.0001")) for a in cols[10]], pa.decimal128(18, 4)),
            "currency": pa.array(cols[11], pa.string()),
        })
        os.makedirs(os.path.join(ROOT, "transactions"), exist_ok=True)
        pq.write_table(table, os.path.join(ROOT, "transactions", name))
    else:
        write_csv("transactions/" + name, HEADER_T, rows, gz=name.endswith(".gz"))
print("wrote", ROOT)
