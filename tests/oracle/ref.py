"""An independent Python model of rules.md and reports.md (written in review, sharing no code
with the crate), used by gen.py for differential testing. Its rejects are not modelled."""
"""Independent reference of rules.md/reports.md for generated (all-valid) landing zones."""
import os, random, shutil, subprocess, sys, csv, io, hashlib, calendar
from datetime import date, timedelta
from fractions import Fraction as F

def _target_dir():
    """cargo's own target folder (CARGO_TARGET_DIR, a config, or ./target), as cargo reports it."""
    import json, subprocess
    meta = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"], capture_output=True,
                          text=True, check=True, cwd=os.path.join(os.path.dirname(__file__), "..", ".."))
    return json.loads(meta.stdout)["target_directory"]
BIN=os.environ.get("INCENTIVES_BIN") or os.path.join(_target_dir(), "debug", "incentives")
MINOR={"USD":2,"EUR":2,"JPY":0,"KWD":3,"GBP":2}

def D(s): return date.fromisoformat(s)
def rnd(x, digits):
    q = x * (10**digits)
    n = abs(q.numerator) // abs(q.denominator) if True else 0
    frac = abs(q) - n
    if frac >= F(1,2): n += 1
    return F(n if q >= 0 else -n, 10**digits)
def fmt(x, digits):
    n = int(x * 10**digits)
    assert F(n, 10**digits) == x
    s = "-" if n < 0 else ""
    n = abs(n)
    if digits == 0: return f"{s}{n}"
    return f"{s}{n // 10**digits}.{n % 10**digits:0{digits}d}"
def guard(t):
    return "'" + t if t and t[0] in "=+-@\t\r" else t

def add_months(d, m):
    y, mo = divmod(d.month - 1 + m, 12)
    return date(d.year + y, mo + 1, d.day)

class Period:
    def __init__(self, d, kind):
        self.kind = kind
        m = d.month if kind == "month" else (d.month - 1)//3*3 + 1
        self.start = date(d.year, m, 1)
    def end(self): return add_months(self.start, 1 if self.kind=="month" else 3) - timedelta(days=1)
    def label(self):
        return f"{self.start.year}-{self.start.month:02d}" if self.kind=="month" else f"{self.start.year}-Q{(self.start.month-1)//3+1}"
    def key(self): return (self.start, self.kind)
    def closes(self): return self.end() + timedelta(days=2)
    def pay(self, lag):
        c = self.closes(); return add_months(date(c.year, c.month, 15), lag)

def active(spans, d):
    return any(s <= d and (e is None or d <= e) for s, e in spans)

def compute(world, progs, D_):
    s = max((x for x in world["snaps"] if x[0] <= D_), key=lambda x: x[0])
    world = dict(world, partners=s[1], agreements=s[2], competencies=s[3])
    partners = world["partners"]
    txs = [t for t in world["tx"] if t["delivery"] <= D_]
    sales = {t["id"]: t for t in txs if t["type"] == "sale"}
    refunds = [t for t in txs if t["type"] == "refund" and t["orig"] in sales]
    refunds.sort(key=lambda t: (t["delivery"], t["date"], t["id"]))
    prof = world["profiles_at"](D_)
    first_sale = {}
    for t in sales.values():
        r = t["reseller"]; first_sale[r] = min(first_sale.get(r, t["date"]), t["date"])
    def earner(t, ptype):
        return t["provider"] if ptype == "indirect_provider" else t["reseller"]
    def reasons(p, pid, d):
        pt = partners[pid]["type"]; out = []
        if not (p["start"] <= d <= p["end"]): out.append("OUTSIDE_PROGRAM_PERIOD")
        ag = world["agreements"].get(pid, {})
        if not active(ag.get("partner_network", []), d): out.append("NO_NETWORK_AGREEMENT")
        if pt == "indirect_provider" and not active(ag.get("cloud_distributor", []), d): out.append("NO_DISTRIBUTOR_AGREEMENT")
        if pt == "direct_reseller" and not active(ag.get("cloud_reseller", []), d): out.append("NO_RESELLER_AGREEMENT")
        if pt == "indirect_reseller":
            reg = partners[pid]["reg"]
            if reg is None or reg > d: out.append("NOT_NETWORK_REGISTERED")
            fs = first_sale.get(pid)
            if fs is None or d < fs + timedelta(days=1): out.append("NOT_INVITED")
        if not active(world["competencies"].get(pid, []), d): out.append("NO_COMPETENCY")
        return out
    rep = {k: [] for k in ["eligibility","earnings","unearned","payouts","dashboard"]}
    for p in sorted(progs, key=lambda p: p["id"].encode()):
        kind = p["period"]
        lever_of = {f: l for l in p["levers"] for f in l["families"]}
        ptype = p["type"]
        plist = sorted([pid for pid in partners if partners[pid]["type"] == ptype], key=lambda s: s.encode())
        elig = {}
        for pid in plist:
            rs = reasons(p, pid, D_)
            since = None
            if not rs:
                d = D_
                while d - timedelta(days=1) >= p["start"] and not reasons(p, pid, d - timedelta(days=1)):
                    d -= timedelta(days=1)
                since = d
            inv = (first_sale[pid] + timedelta(days=1)) if ptype == "indirect_reseller" and pid in first_sale else None
            act = any(earner(t, ptype) == pid and D_ - timedelta(days=364) <= t["date"] <= D_ for t in sales.values())
            elig[pid] = (rs, since, inv, act)
            rep["eligibility"].append([D_.isoformat(), guard(p["id"]), guard(pid), guard(partners[pid]["name"]), ptype,
                str(not rs).lower(), ";".join(rs), since.isoformat() if since else "", inv.isoformat() if inv else "", str(act).lower()])
        considered = {}
        last = {}
        lines = []
        for t in sorted(sales.values(), key=lambda t: t["id"]):
            e = earner(t, ptype)
            if not e or e not in partners or partners[e]["type"] != ptype: continue
            if t["family"] not in lever_of: continue
            if not (p["start"] <= t["date"] <= p["end"]): continue
            last[e] = max(last.get(e, t["date"]), t["date"])
            rs = reasons(p, e, t["date"])
            considered[t["id"]] = (e, not rs)
            lev = lever_of[t["family"]]
            if rs:
                rep["unearned"].append(((p["id"], e, t["date"], t["id"]), [D_.isoformat(), guard(p["id"]), guard(e), guard(t["id"]), t["date"].isoformat(), guard(lev["name"]), fmt(t["amount"],4), t["currency"], ";".join(rs)]))
            else:
                lines.append(dict(t=t, e=e, lev=lev))
        for t in refunds:
            if t["orig"] not in considered: continue
            e, earned = considered[t["orig"]]
            last[e] = max(last.get(e, t["date"]), t["date"])
            if earned: lines.append(dict(t=t, e=e, lev=lever_of[t["family"]]))
        rev = {}
        for l in lines:
            t = l["t"]
            l["tp"] = Period(t["date"], kind)
            l["late"] = t["delivery"] > l["tp"].end() + timedelta(days=1)
            l["booked"] = Period(t["delivery"], kind) if l["late"] else l["tp"]
            l["fx"] = world["fx"](t["currency"], t["date"])
            l["amount_usd"] = rnd(t["amount"] * l["fx"], 2)
            if l["lev"]["tiers"] and not l["late"]:
                k = (l["e"], l["lev"]["name"], l["tp"].key()); rev[k] = rev.get(k, 0) + l["amount_usd"]
        def rate(e, lev, per):
            r = rev.get((e, lev["name"], per.key()), 0); out = lev["rate"]
            for mn, rt in lev["tiers"]:
                if r >= mn: out = rt
            return out
        sale_period = {l["t"]["id"]: l["tp"] for l in lines if l["t"]["type"] == "sale"}
        claw = {}
        for l in lines:
            t = l["t"]; minor = MINOR[t["currency"]]
            if t["type"] == "sale":
                l["rate"] = rate(l["e"], l["lev"], l["tp"])
                l["earn"] = rnd(t["amount"] * l["rate"], minor); l["earn_usd"] = rnd(t["amount"] * l["fx"] * l["rate"], 2)
            else:
                l["rate"] = rate(l["e"], l["lev"], sale_period[t["orig"]])
                c = claw.setdefault(t["orig"], [0, 0, 0, 0])
                c[0] += t["amount"] * l["rate"]; c[1] += t["amount"] * l["fx"] * l["rate"]
                a, b = rnd(c[0], minor), rnd(c[1], 2)
                l["earn"], l["earn_usd"] = a - c[2], b - c[3]
                c[2], c[3] = a, b
        groups = {}
        for l in lines:
            k = (l["e"], l["booked"].key(), l["lev"]["type"])
            g = groups.setdefault(k, dict(total=0, per=l["booked"], type=l["lev"]["type"], e=l["e"]))
            g["total"] += l["earn_usd"]
        for k, g in groups.items():
            closed = D_ >= g["per"].closes()
            g["status"] = ("available" if g["type"] == "coop" else "carried_forward") if closed else "accruing"
            g["hold"] = []; g["pid"] = ""; g["pdate"] = None
        for e in plist:
            bal = 0; pend = []
            for k in sorted([k for k in groups if k[0] == e and k[2] == "rebate" and groups[k]["status"] == "carried_forward"], key=lambda k: k[1]):
                g = groups[k]; bal += g["total"]; pend.append(g)
                if bal >= p["min"]:
                    pid_ = hashlib.sha256(f"{p['id']}|{e}|{g['per'].label()}".encode()).hexdigest()[:20]
                    pd = g["per"].pay(p["lag"])
                    pr = prof.get(e)
                    hold = ["NO_PAYMENT_PROFILE"] if pr is None else ([x for x, ok in (("BANK_NOT_VERIFIED", pr[0]), ("TAX_NOT_VERIFIED", pr[1])) if not ok])
                    for gg in pend:
                        gg["pid"] = pid_; gg["pdate"] = pd; gg["hold"] = hold
                        gg["status"] = "on_hold" if hold else "scheduled"
                    pend = []; bal = 0
        for l in lines:
            t = l["t"]; g = groups[(l["e"], l["booked"].key(), l["lev"]["type"])]
            epm = ""
            if g["type"] == "rebate":
                epm = (g["pdate"] or g["per"].pay(p["lag"])).strftime("%Y-%m")
            eid = hashlib.sha256(f"{p['id']}|{t['id']}|{l['lev']['name']}".encode()).hexdigest()[:20]
            rep["earnings"].append(((p["id"], l["e"], t["date"], t["id"]), [eid, D_.isoformat(), guard(p["id"]), guard(l["e"]), guard(partners[l["e"]]["name"]), guard(t["id"]), t["type"], guard(t["orig"] or ""), t["date"].isoformat(), l["booked"].label(), guard(l["lev"]["name"]), l["lev"]["type"], "C1", guard("SKU-"+t["family"]), t["family"], "1", fmt(t["amount"],4), t["currency"], fmt(l["fx"],8), fmt(l["amount_usd"],2), fmt(l["rate"],8), fmt(l["earn"], MINOR[t["currency"]]), fmt(l["earn_usd"],2), "final" if D_ >= l["booked"].closes() else "estimated", g["pid"], g["status"], epm, "PRIOR_PERIOD" if l["late"] else ""]))
        for k, g in groups.items():
            rep["payouts"].append(((p["id"], g["e"], g["per"].label(), g["type"]), [D_.isoformat(), guard(p["id"]), guard(g["e"]), guard(partners[g["e"]]["name"]), g["per"].label(), g["type"], fmt(g["total"],2), g["status"], ";".join(g["hold"]), g["pid"], g["pdate"].isoformat() if g["pdate"] else ""]))
        for pid in plist:
            gs = [g for g in groups.values() if g["e"] == pid]
            s = lambda f: fmt(sum((g["total"] for g in gs if f(g)), F(0)), 2)
            rs = elig[pid][0]
            rep["dashboard"].append([D_.isoformat(), guard(p["id"]), guard(pid), guard(partners[pid]["name"]), str(not rs).lower(), ";".join(rs),
                s(lambda g: True), s(lambda g: g["type"]=="rebate"), s(lambda g: g["type"]=="coop"),
                s(lambda g: g["status"]=="scheduled"), s(lambda g: g["status"]=="on_hold"), s(lambda g: g["status"]=="carried_forward"),
                s(lambda g: g["status"]=="accruing"), s(lambda g: g["status"]=="available"),
                last[pid].isoformat() if pid in last else "", world["data_as_of"](D_)])
    for k in ("earnings", "unearned", "payouts"):
        def sk(x):
            key = x[0]
            return tuple(v.encode() if isinstance(v, str) else v for v in key)
        rep[k] = [r for _, r in sorted(rep[k], key=sk)]
    return rep

HEAD = {
 "eligibility":"run_date,program_id,partner_id,partner_name,partner_type,eligible,reasons,eligible_since,invited_on,active_reseller",
 "earnings":"earning_id,run_date,program_id,partner_id,partner_name,transaction_id,transaction_type,original_transaction_id,transaction_date,earning_period,lever,earning_type,customer_id,product_id,product_family,quantity,transaction_amount,transaction_currency,usd_rate,transaction_amount_usd,earning_rate,earning_amount,earning_amount_usd,period_status,payout_id,payout_status,estimated_payment_month,reason_code",
 "unearned":"run_date,program_id,partner_id,transaction_id,transaction_date,lever,transaction_amount,transaction_currency,reasons",
 "payouts":"run_date,program_id,partner_id,partner_name,earning_period,earning_type,earning_amount_usd,status,hold_reasons,payout_id,payment_date",
 "dashboard":"run_date,program_id,partner_id,partner_name,eligible,reasons,earned_to_date_usd,rebate_to_date_usd,coop_to_date_usd,scheduled_usd,on_hold_usd,carried_forward_usd,accruing_usd,coop_available_usd,last_transaction_date,data_as_of",
}
def write_expected(root, D_, rep):
    for k, rows in rep.items():
        d = f"{root}/{k}/run_date={D_.isoformat()}"; os.makedirs(d, exist_ok=True)
        with open(f"{d}/{k}.csv", "w", newline="") as f:
            f.write(HEAD[k] + "\n")
            w = csv.writer(f, lineterminator="\n")
            for r in rows: w.writerow(r)
    d = f"{root}/rejects/run_date={D_.isoformat()}"; os.makedirs(d, exist_ok=True)
    open(f"{d}/rejects.csv","w").write("run_date,feed,file,row,field,value,reason\n")

def write_exports(root, D_, rep, partners, users):
    import urllib.parse
    def unguard(v): return v[1:] if v.startswith("'") and v[1:2] and v[1] in "=+-@\t\r" else v
    for pid in partners:
        name = "partner_id=" + "".join(chr(b) if chr(b).isalnum() and b < 128 or chr(b) in "._~-" else f"%{b:02X}" for b in pid.encode())
        d = f"{root}/exports/run_date={D_.isoformat()}/{name}"; os.makedirs(d, exist_ok=True)
        for k in ("earnings", "unearned", "payouts", "dashboard"):
            col = HEAD[k].split(",").index("partner_id")
            with open(f"{d}/{k}.csv", "w", newline="") as f:
                f.write(HEAD[k] + "\n"); w = csv.writer(f, lineterminator="\n")
                for r in rep[k]:
                    if unguard(r[col]) == pid: w.writerow(r)
        rows = []
        for u, p, role in users:
            if p != pid: continue
            for fn in ["access.csv", "dashboard.csv", "earnings.csv", "payouts.csv", "unearned.csv"]:
                if role == "incentive_admin" or fn != "payouts.csv": rows.append((u, fn, role))
        rows.sort(key=lambda x: (x[0].encode(), x[1].encode()))
        with open(f"{d}/access.csv", "w", newline="") as f:
            f.write("partner_id,user_id,role,file\n"); w = csv.writer(f, lineterminator="\n")
            for u, fn, role in rows: w.writerow([guard(pid), guard(u), role, fn])
