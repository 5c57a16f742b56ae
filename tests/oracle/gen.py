"""Differential testing of the rules: random landing zones and programs (quarterly and monthly,
mid-month starts, tiers, minimums 0.00, late lines, refunds across months, backdated reference
data, formula-looking names), reports predicted by ref.py, the binary run on each, and
compare.py (../shared/conformance) between them.

    python3 tests/oracle/gen.py FIRST_SEED LAST_SEED      (build the binary first)

A date counts as bad when any check other than rejects fails."""
import os, random, shutil, subprocess, sys
from datetime import date, timedelta
from fractions import Fraction as F
sys.path.insert(0, os.path.dirname(__file__))
from ref import *

def rdate(rng, a, b):
    return a + timedelta(days=rng.randint(0, (b - a).days))

def dec(s): 
    return F(s) if "." not in s else F(int(s.replace(".","").replace("-","")) * (-1 if s.startswith("-") else 1), 10**len(s.split(".")[1]))

def gen(seed, root):
    rng = random.Random(seed)
    shutil.rmtree(root, ignore_errors=True)
    L = f"{root}/landing"
    def write(feed, d, header, rows):
        os.makedirs(f"{L}/{feed}", exist_ok=True)
        with open(f"{L}/{feed}/{d.isoformat()}.csv", "a") as f:
            if f.tell() == 0: f.write(header + "\n")
            for r in rows: f.write(",".join(r) + "\n")
    snap = date(2026, 1, 1)
    partners = {}
    ids = {"direct_reseller": ["DR1", "DR2", "-DR3"], "indirect_reseller": ["IR1", "IR2", "IR3", "IR4"], "indirect_provider": ["IP1", "IP2"]}
    for t, l in ids.items():
        for pid in l:
            reg = None
            if t == "indirect_reseller" and rng.random() < 0.8:
                reg = rdate(rng, date(2026, 1, 1), date(2026, 10, 1))
            partners[pid] = dict(type=t, reg=reg, name=rng.choice([f"N{pid}", f"=N{pid}", f"@N {pid}", f"+{pid}"]))
    write("partners", snap, HDR_P, [[pid, p["name"], "US", p["type"], p["reg"].isoformat() if p["reg"] else ""] for pid, p in partners.items()])
    agreements = {}; arows = []; n = 0
    def spans(rng):
        out = []
        r = rng.random()
        if r < 0.04: return out
        s = rdate(rng, date(2025, 6, 1), date(2026, 8, 1)) if rng.random()<0.85 else rdate(rng, date(2026,6,1), date(2026,12,1))
        e = None if rng.random() < 0.75 else rdate(rng, s, date(2027, 3, 1))
        out.append((s, e))
        if e and rng.random() < 0.5:
            s2 = e + timedelta(days=rng.choice([1, 2, 10]))
            out.append((s2, None if rng.random() < 0.5 else s2 + timedelta(days=rng.randint(0, 200))))
        return out
    for pid, p in partners.items():
        need = ["partner_network"] + {"direct_reseller": ["cloud_reseller"], "indirect_provider": ["cloud_distributor"], "indirect_reseller": []}[p["type"]]
        for at in need:
            for s, e in spans(rng):
                n += 1; agreements.setdefault(pid, {}).setdefault(at, []).append((s, e))
                arows.append([f"AG{n}", pid, at, s.isoformat(), e.isoformat() if e else ""])
    write("agreements", snap, HDR_A, arows)
    comps = {}; crows = []
    for pid in partners:
        for i, (s, e) in enumerate(spans(rng)):
            comps.setdefault(pid, []).append((s, e)); crows.append([pid, f"c{i}", "gold", s.isoformat(), e.isoformat() if e else ""])
    write("competencies", snap, HDR_C, crows)
    snap2 = date(2026, 12, 1)
    agreements2 = {pid: {k: list(v) for k, v in a.items()} for pid, a in agreements.items()}
    comps2 = {pid: list(v) for pid, v in comps.items()}
    partners2 = {pid: dict(p) for pid, p in partners.items()}
    for pid in partners:
        if rng.random() < 0.3:
            s = rdate(rng, date(2025, 1, 1), date(2026, 11, 1)); agreements2.setdefault(pid, {}).setdefault("partner_network", []).append((s, None))
        if rng.random() < 0.2:
            comps2[pid] = []
        if pid == "IR4" and rng.random() < 0.3:
            partners2[pid]["type"] = "direct_reseller"
        if partners[pid]["type"] == "indirect_reseller" and rng.random() < 0.3:
            partners2[pid]["reg"] = rdate(rng, date(2025, 1, 1), date(2026, 11, 1))
    n2 = 0; arows2 = []
    for pid, a in agreements2.items():
        for at, l in a.items():
            for s, e in l:
                n2 += 1; arows2.append([f"AG{n2}", pid, at, s.isoformat(), e.isoformat() if e else ""])
    write("agreements", snap2, HDR_A, arows2)
    crows2 = [[pid, f"c{i}", "gold", s.isoformat(), e.isoformat() if e else ""] for pid, l in comps2.items() for i, (s, e) in enumerate(l)]
    write("competencies", snap2, HDR_C, crows2)
    write("partners", snap2, HDR_P, [[pid, p["name"], "US", p["type"], p["reg"].isoformat() if p["reg"] else ""] for pid, p in partners2.items()])
    users = []
    for u in ["a@x", "-b@x", "c@x"]:
        for pid in rng.sample(sorted(partners), rng.randint(0, 3)):
            users.append((u, pid, rng.choice(["incentive_admin", "incentive_user"])))
    write("users", snap, HDR_U, [list(x) for x in users])
    prof_snaps = {}
    for sd in [snap, date(2026, 11, 15)]:
        pr = {}
        for pid in partners:
            if rng.random() < 0.8: pr[pid] = (rng.random() < 0.7, rng.random() < 0.8)
        prof_snaps[sd] = pr
        write("payment_profiles", sd, HDR_PP, [[pid, "USD", str(b).lower(), str(t).lower()] for pid, (b, t) in pr.items()])
    fx = {}
    frows = []
    m = date(2026, 1, 1)
    while m <= date(2028, 12, 1):
        for c, base in (("EUR", "1.1"), ("JPY", "0.0067"), ("KWD", "3.25")):
            r = dec(base) * F(rng.randint(900, 1100), 1000)
            r = F(round(r * 10**8), 10**8)
            fx[(c, m)] = r; frows.append([c, f"{m.year}-{m.month:02d}", fmt(r, 8)])
        m = add_months(m, 1)
    write("fx_rates", snap, HDR_FX, frows)
    txs = []
    fams = ["modern_work", "azure", "dynamics", "security"]
    for i in range(rng.randint(15, 45)):
        kind = rng.random()
        if kind < 0.4:
            res = rng.choice(ids["direct_reseller"]); prov = "" if rng.random() < 0.8 else rng.choice(ids["indirect_provider"])
        else:
            res = rng.choice(ids["indirect_reseller"]); prov = rng.choice(ids["indirect_provider"]) if rng.random() < 0.85 else ""
        d = rdate(rng, date(2026, 6, 1), date(2027, 2, 28))
        deliv = d + timedelta(days=rng.choice([0, 0, 0, 1, 1, 2, 3, 20, 45, 100]))
        cur = rng.choice(["USD", "USD", "EUR", "JPY", "KWD"])
        amt = F(rng.randint(1, 400000), 100) if rng.random() < 0.8 else F(rng.randint(1, 9999999), 10000)
        if rng.random() < 0.15: amt = F(rng.randint(1, 200), 1)
        s = dict(id=f"T{i:03d}", type="sale", date=d, delivery=deliv, reseller=res, provider=prov, family=rng.choice(fams), currency=cur, amount=amt, orig=None)
        txs.append(s)
        left = amt
        for j in range(rng.choice([0, 0, 0, 1, 1, 2, 3])):
            if left <= 0: break
            ra = left if rng.random() < 0.3 else F(rng.randint(1, max(1, int(left * 10000))), 10000)
            ra = min(ra, left); left -= ra
            rd = d + timedelta(days=rng.choice([0, 1, 5, 30, 70, 150]))
            rdl = rd + timedelta(days=rng.choice([0, 0, 1, 2, 3, 40]))
            txs.append(dict(id=f"R{i:03d}{j}", type="refund", date=rd, delivery=rdl, reseller=res, provider=prov, family=s["family"], currency=cur, amount=-ra, orig=s["id"]))
    bydel = {}
    for t in txs: bydel.setdefault(t["delivery"], []).append(t)
    for dd, l in bydel.items():
        write("transactions", dd, HDR_T, [[t["id"], t["date"].isoformat(), t["type"], t["orig"] or "", t["reseller"], t["provider"], "C1", "SKU-" + t["family"], t["family"], "1", fmt(t["amount"], 4), t["currency"]] for t in l])
    files = {snap, date(2026, 11, 15)} | set(bydel)
    files.add(snap2)
    world = dict(snaps=[(snap, partners, agreements, comps), (snap2, partners2, agreements2, comps2)], users=users,
                 partners=partners, agreements=agreements, competencies=comps, tx=txs,
                 profiles_at=lambda D_: prof_snaps[max(s for s in prof_snaps if s <= D_)],
                 fx=lambda c, d: F(1) if c == "USD" else fx[(c, date(d.year, d.month, 1))],
                 data_as_of=lambda D_: max(f for f in files if f <= D_).isoformat())
    # programs
    P = f"{root}/pipelines"; os.makedirs(P)
    progs = []
    def tiers_toml(tiers):
        return "".join(f'  [[levers.tiers]]\n  min_period_revenue_usd = "{mn}"\n  rate = "{rt}"\n' for mn, rt in tiers)
    def mk(pid, ptype, start, end, period, lag, mn, levers):
        text = f'id = "{pid}"\nname = "{pid}"\npartner_type = "{ptype}"\nstart = "{start}"\nend = "{end}"\nearning_period = "{period}"\npayout_lag_months = {lag}\nminimum_payout_usd = "{mn}"\n'
        lv = []
        for name, typ, fam, rate, tiers in levers:
            text += f'\n[[levers]]\nname = "{name}"\nearning_type = "{typ}"\nproduct_families = [{", ".join(chr(34)+f+chr(34) for f in fam)}]\nrate = "{rate}"\n' + tiers_toml(tiers)
            lv.append(dict(name=name, type=typ, families=fam, rate=dec(rate), tiers=[(dec(a), dec(b)) for a, b in tiers]))
        open(f"{P}/{pid}.toml", "w").write(text)
        progs.append(dict(id=pid, type=ptype, start=D(start), end=D(end), period=period, lag=lag, min=dec(mn), levers=lv))
    def rmin(): return rng.choice(["0.00", "50.00", "100.00", "250.00", "1000.00"])
    def rtiers():
        if rng.random() < 0.25: return []
        a = rng.choice(["100", "300", "1000"]); b = str(int(a) * rng.choice([2, 4]))
        return [(a, "0.06"), (b, "0.085")] if rng.random() < 0.5 else [(a, "0.0725")]
    mk("dr-m", "direct_reseller", "2026-07-01", "2027-06-30", "month", rng.randint(0, 3), rmin(),
       [("core", "rebate", ["modern_work", "dynamics"], "0.04", rtiers()), ("az", "coop", ["azure"], "0.02", rtiers())])
    mk("dr-q", "direct_reseller", "2026-08-15", "2026-12-31", "quarter", rng.randint(0, 3), rmin(),
       [("core", "rebate", ["modern_work"], "0.05", rtiers()), ("sec", "rebate", ["security"], "0.03", [])])
    mk("ir-q", "indirect_reseller", "2026-07-01", "2027-06-30", "quarter", rng.randint(0, 3), rmin(),
       [("core", "rebate", ["modern_work", "dynamics", "security"], "0.045", rtiers()), ("az", "coop", ["azure"], "0.025", [])])
    mk("ip-m", "indirect_provider", "2026-07-01", "2027-03-31", "month", rng.randint(0, 3), rmin(),
       [("dist", "rebate", ["modern_work", "azure", "dynamics"], "0.01", rtiers())])
    return world, progs

HDR_P="partner_id,partner_name,country_code,partner_type,network_registered_on"
HDR_A="agreement_id,partner_id,agreement_type,start_date,end_date"
HDR_C="partner_id,competency,level,start_date,end_date"
HDR_U="user_id,partner_id,role"
HDR_PP="partner_id,payout_currency,bank_verified,tax_verified"
HDR_T="transaction_id,transaction_date,transaction_type,original_transaction_id,reseller_id,provider_id,customer_id,product_id,product_family,quantity,amount,currency"
HDR_FX="currency,month,usd_rate"

DATES = ["2026-07-15", "2026-09-01", "2026-10-02", "2026-11-01", "2026-11-16", "2026-12-02", "2027-01-02", "2027-02-02", "2027-04-02", "2027-07-05", "2028-06-01"]
# Where cases go, and the comparer of ../shared/conformance (a developer tool: shared/ is read
# at development time only, never by the test suite).
WORK = os.environ.get("ORACLE_WORK", "/tmp/incentives-oracle")
COMPARE = os.environ.get("COMPARE", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "conformance", "compare.py"))
IGNORE = []  # the model has no rejects; rejects differences show as one failed check per date

if __name__ == "__main__":
    if not os.path.isfile(COMPARE):
        print(f"skipped: this developer tool needs the shared conformance comparer, {COMPARE} "
              "(outside the project; set COMPARE=... to point at it)")
        sys.exit(0)
    seeds = range(int(sys.argv[1]), int(sys.argv[2]))
    bad = 0
    for seed in seeds:
        root = os.path.join(WORK, f"case{seed}")
        world, progs = gen(seed, root)
        for ds in DATES:
            D_ = D(ds)
            rep = compute(world, progs, D_)
            write_expected(f"{root}/expected", D_, rep)
            write_exports(f"{root}/expected", D_, rep, world["partners"], world["users"])
            r = subprocess.run([BIN, "run", "-q", "--input", f"{root}/landing", "--programs", f"{root}/pipelines", "--date", ds, "--output", f"{root}/out"], capture_output=True, text=True)
            if r.returncode: print(seed, ds, "RC", r.returncode, r.stderr[:500]); bad += 1; continue
            c = subprocess.run(["python3", COMPARE, f"{root}/expected", f"{root}/out", "--date", ds] + IGNORE, capture_output=True, text=True)
            fails = [l for l in c.stdout.splitlines() if l.startswith("FAIL ") and l.strip() != "FAIL rejects"]
            if fails:
                bad += 1
                print(f"== seed {seed} date {ds}"); print(c.stdout[-3000:])
    print("bad", bad)
