#!/usr/bin/env python3
"""Benchmark driver (issue 6): `incentives run` against the DuckDB peer and the I/O floor.

usage: bench.py [--sizes 1000000,10000000,30000000,100000000] [--work DIR] [--binary PATH]
                [--partners-per-million 20000] [--keep] [--check] [--results bench/results.md]
                [--drop-caches]

For each size M (number of generated sales), on the same files, one after another:

  generate    incentives generate --partners P --transactions M --months 12 --seed 1
                --format parquet --output WORK/gen-M
              (P = max(500, M / 1e6 * partners-per-million), at most 300 000)
  incentives  incentives run --input WORK/gen-M/landing --programs WORK/gen-M/pipelines
                --output WORK/out-M -q
  duckdb      duckdb_rules.py WORK/gen-M/landing WORK/gen-M/pipelines latest WORK/peer-M
  floor       io_floor.py WORK/gen-M/landing latest WORK/out-M WORK/floor-M

Each step runs under `/usr/bin/time -f '%e %U %S %M'` (wall s, user s, sys s, max RSS KB)
after a `sync`; the page cache is dropped only with --drop-caches (root).
A step that fails (non-zero exit, killed for memory) is recorded with its exit status and
whatever was measured, and the bench goes on. With --check, check_peer.py compares the peer's
reports with incentives' (sizes up to 1M only; slower than the steps themselves at scale).

Output bytes are the sizes of the regular files each step left in its folder (links not
followed). WORK/peer-M is deleted once measured (and checked), before the floor step, and
WORK/floor-M after it; WORK/out-M and WORK/gen-M after each size unless --keep. Each size's
table is printed and appended to the results file, after a header naming the date, the
machine, the git commit and the binary; a summary over all sizes comes last. Step logs (stdout,
stderr, /usr/bin/time output, checker output) are kept in WORK/logs/M/.
"""
import argparse
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# Rough peak disk use per generated sale (input + incentives' output + floor, in blocks used;
# 2.2 KB measured at 200k sales with 20 000 partners per million, README's 1M numbers are higher).
DISK_BYTES_PER_SALE = 3000


def ensure_deps():
    """Installs duckdb and pyarrow (the versions CI uses) when either cannot be imported."""
    try:
        import duckdb  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        print("installing duckdb and pyarrow", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "duckdb==2.0.1", "pyarrow==26.0.1"],
                       check=True)
        importlib.invalidate_caches()


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return os.cpu_count(), model, mem_kb


def git_commit():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return head + (" (uncommitted changes in the work tree)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def tree_bytes(path):
    """Sum of the sizes of the regular files under path (links not followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                try:
                    total += os.path.getsize(p)
                except OSError:
                    pass
    return total


def rm(path):
    if os.path.islink(path) or os.path.isfile(path):
        os.remove(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


DROP_CACHES = False


def measure(name, cmd, logs, out_dir):
    """Runs cmd under /usr/bin/time after a sync (and, with --drop-caches, with the page cache
    emptied: a cache full of the previous step's dirty output costs the next step reclaim
    work); returns a dict of the measurements."""
    subprocess.run(["sync"])
    if DROP_CACHES:
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
        except OSError as e:
            print(f"WARNING: could not drop the page cache: {e}", flush=True)
    tfile = os.path.join(logs, name + ".time")
    with open(os.path.join(logs, name + ".out"), "w") as so, open(os.path.join(logs, name + ".err"), "w") as se:
        print(f"$ {' '.join(cmd)}", flush=True)
        t = time.time()
        rc = subprocess.run(["/usr/bin/time", "-o", tfile, "-f", "%e %U %S %M", *cmd], stdout=so, stderr=se).returncode
        elapsed = time.time() - t
    r = {"name": name, "rc": rc, "note": "", "wall": elapsed, "user": None, "sys": None, "rss_kb": None}
    try:
        with open(tfile) as f:
            lines = [x.strip() for x in f if x.strip()]
        wall, user, sys_, rss = lines[-1].split()
        r.update(wall=float(wall), user=float(user), sys=float(sys_), rss_kb=int(rss))
        if len(lines) > 1:
            r["note"] = lines[0]  # e.g. "Command terminated by signal 9"
    except (OSError, ValueError, IndexError):
        r["note"] = "no /usr/bin/time output"
    r["out_bytes"] = tree_bytes(out_dir) if out_dir else None
    with open(os.path.join(logs, name + ".out")) as f:
        r["stdout"] = f.read()[-4000:]
    with open(os.path.join(logs, name + ".err")) as f:
        r["stderr_tail"] = f.read()[-2000:]
    status = "ok" if rc == 0 else f"FAILED (exit {rc}{'; ' + r['note'] if r['note'] else ''})"
    print(f"  {status}: {fmt_s(r['wall'])} s wall, {fmt_s(cpu(r))} s cpu, {fmt_gib(r['rss_kb'])} GiB peak RSS",
          flush=True)
    if rc != 0 and r["stderr_tail"].strip():
        print("  stderr: " + r["stderr_tail"].strip().replace("\n", "\n  stderr: ")[-1500:], flush=True)
    return r


def cpu(r):
    return None if r["user"] is None else r["user"] + r["sys"]


def fmt_s(x):
    return "–" if x is None else f"{x:.2f}"


def fmt_gib(kb):
    return "–" if kb is None else f"{kb / 2**20:.2f}"


def ratio(ra, rb, key):
    """ra[key] / rb[key] of two steps' measurements; n/a when either step is missing or failed."""
    if ra is None or rb is None or ra["rc"] != 0 or rb["rc"] != 0:
        return "n/a"
    a, b = ra[key], rb[key]
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def run_date_of(out_dir, landing):
    """The run date incentives used (its earnings/run_date=D folder), else the newest
    transactions delivery date."""
    try:
        dates = sorted(d.split("=", 1)[1] for d in os.listdir(os.path.join(out_dir, "earnings"))
                       if d.startswith("run_date="))
        if dates:
            return dates[-1]
    except OSError:
        pass
    names = sorted(n[:10] for n in os.listdir(os.path.join(landing, "transactions")) if n[:4].isdigit())
    return names[-1] if names else "latest"


def table(size, partners, run_date, steps, check_line):
    by = {r["name"]: r for r in steps}
    lines = [
        f"### {size:,} sales, {partners:,} partners (run date {run_date})",
        "",
        "| step | wall s | CPU s (user+sys) | CPU/wall | peak RSS GiB | output bytes | status |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in steps:
        status = "ok" if r["rc"] == 0 else f"failed, exit {r['rc']}" + (f" ({r['note']})" if r["note"] else "")
        c = cpu(r)
        busy = "–" if c is None or not r["wall"] else f"{c / r['wall']:.2f}"
        ob = "–" if r["out_bytes"] is None else f"{r['out_bytes']:,}"
        lines.append(f"| {r['name']} | {fmt_s(r['wall'])} | {fmt_s(c)} | {busy} | {fmt_gib(r['rss_kb'])} | {ob} | {status} |")
    inc, duck, floor = by.get("incentives"), by.get("duckdb"), by.get("floor")
    ratios = (f"incentives / duckdb wall: {ratio(inc, duck, 'wall')}; "
              f"incentives / floor wall: {ratio(inc, floor, 'wall')}; "
              f"incentives / duckdb peak RSS: {ratio(inc, duck, 'rss_kb')}")
    lines += ["", ratios + (" (n/a: a step failed)" if "n/a" in ratios else "")]
    if check_line:
        lines += ["", f"check_peer.py: {check_line}"]
    return "\n".join(lines) + "\n"


def summary(rows):
    lines = [
        "### Summary",
        "",
        "| sales | incentives wall s | duckdb wall s | floor wall s | inc / duckdb wall | inc / floor wall "
        "| incentives RSS GiB | duckdb RSS GiB | inc / duckdb RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, by in rows:
        i, d, f = by.get("incentives"), by.get("duckdb"), by.get("floor")

        def w(r):
            return "–" if r is None else fmt_s(r["wall"]) + ("" if r["rc"] == 0 else " (failed)")

        lines.append(
            f"| {size:,} | {w(i)} | {w(d)} | {w(f)} | {ratio(i, d, 'wall')} "
            f"| {ratio(i, f, 'wall')} | {fmt_gib(i and i['rss_kb'])} "
            f"| {fmt_gib(d and d['rss_kb'])} | {ratio(i, d, 'rss_kb')} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000000,10000000,30000000,100000000",
                    help="comma-separated numbers of generated sales")
    ap.add_argument("--work", default=os.path.join("/tmp", "incentives-bench"),
                    help="folder for generated data and outputs (tens of GB at 100M)")
    ap.add_argument("--binary", default=None,
                    help="the incentives binary (default: the release build in cargo's target folder)")
    ap.add_argument("--partners-per-million", type=int, default=20000)
    ap.add_argument("--keep", action="store_true", help="keep WORK/gen-M and WORK/out-M")
    ap.add_argument("--check", action="store_true", help="run check_peer.py (sizes <= 1M)")
    ap.add_argument("--results", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--drop-caches", action="store_true",
                    help="empty the page cache before each step (needs root)")
    a = ap.parse_args()
    global DROP_CACHES
    DROP_CACHES = a.drop_caches
    sizes = [int(s.replace("_", "")) for s in a.sizes.split(",") if s.strip()]
    if a.binary is None:
        meta = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"], capture_output=True,
                              text=True, check=True, cwd=os.path.join(os.path.dirname(__file__), ".."))
        a.binary = os.path.join(json.loads(meta.stdout)["target_directory"], "release", "incentives")
    if not os.access(a.binary, os.X_OK):
        sys.exit(f"no executable incentives binary at {a.binary}")
    ensure_deps()

    work = os.path.abspath(a.work)
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    nproc, model, mem_kb = machine()
    import duckdb
    import pyarrow
    version = subprocess.run([a.binary, "--version"], capture_output=True, text=True).stdout.strip()
    mtime = dt.datetime.fromtimestamp(os.path.getmtime(a.binary)).isoformat(timespec="seconds")
    header = (
        f"## Bench {dt.datetime.now().isoformat(timespec='seconds')}\n\n"
        f"- machine: {nproc} CPUs ({model}), MemTotal {mem_kb:,} kB ({mem_kb / 2**20:.1f} GiB), "
        f"{platform.system()} {platform.release()}\n"
        f"- git commit: {git_commit()}\n"
        f"- binary: {a.binary} ({version}, built {mtime})\n"
        f"- python {platform.python_version()}, duckdb {duckdb.__version__}, pyarrow {pyarrow.__version__}\n"
        f"- sizes: {', '.join(f'{s:,}' for s in sizes)} sales; {a.partners_per_million:,} partners per million "
        f"(500 to 300 000); work folder {work}\n"
        f"- `/usr/bin/time -f '%e %U %S %M'` per step after `sync`; page cache "
        f"{'dropped before each step' if a.drop_caches else 'warm'}; output bytes = "
        f"regular files left in the step's folder\n"
    )
    print(header, flush=True)
    with open(a.results, "a") as f:
        f.write("\n" + header + "\n")

    py = sys.executable
    rows = []
    for m in sizes:
        partners = min(300_000, max(500, int(m / 1e6 * a.partners_per_million)))
        gen, out, peer, floor = (os.path.join(work, f"{k}-{m}") for k in ("gen", "out", "peer", "floor"))
        for p in (gen, out, peer, floor):
            rm(p)
        free = shutil.disk_usage(work).free
        expected = m * DISK_BYTES_PER_SALE
        print(f"=== {m:,} sales, {partners:,} partners; {free / 1e9:.1f} GB free, "
              f"~{expected / 1e9:.1f} GB expected", flush=True)
        if free < 2 * expected:
            print(f"WARNING: less free disk ({free / 1e9:.1f} GB) than twice the expected use "
                  f"({expected / 1e9:.1f} GB) in {work}", flush=True)
        landing, pipelines = os.path.join(gen, "landing"), os.path.join(gen, "pipelines")
        logs_m = os.path.join(logs, str(m))
        os.makedirs(logs_m, exist_ok=True)
        steps = [measure("generate", [a.binary, "generate", "--partners", str(partners), "--transactions", str(m),
                                      "--months", "12", "--seed", "1", "--format", "parquet", "--output", gen],
                         logs_m, gen)]
        run_date, check_line = "–", None
        if steps[0]["rc"] == 0:
            steps.append(measure("incentives", [a.binary, "run", "--input", landing, "--programs", pipelines,
                                                "--output", out, "-q"], logs_m, out))
            # The floor writes as many bytes as incentives published. Incentives' own output
            # (tens of GB at 30 M) is removed before DuckDB runs, unless the check needs it or
            # --keep: DuckDB spills tens of GB at 30 M and both would not fit the disk.
            sys.path.insert(0, HERE)
            from io_floor import report_bytes
            csv_bytes, parquet_bytes, _ = report_bytes(out) if os.path.isdir(out) else (0, 0, 0)
            run_date = run_date_of(out, landing)
            if not a.keep and not (a.check and m <= 1_000_000):
                rm(out)
            steps.append(measure("duckdb", [py, os.path.join(HERE, "duckdb_rules.py"), landing, pipelines,
                                            "latest", peer], logs_m, peer))
            if a.check and m > 1_000_000:
                check_line = "skipped (size above 1M)"
            elif a.check and (steps[1]["rc"] != 0 or steps[2]["rc"] != 0):
                check_line = "skipped (a step failed)"
            elif a.check:
                print(f"$ check_peer.py {landing} {pipelines} {run_date} {out} {peer}", flush=True)
                c = subprocess.run([py, os.path.join(HERE, "check_peer.py"), landing, pipelines, run_date, out, peer],
                                   capture_output=True, text=True)
                with open(os.path.join(logs_m, "check.out"), "w") as f:
                    f.write(c.stdout + c.stderr)
                last = [x for x in c.stdout.splitlines() if "passed" in x]
                check_line = (last[-1] if last else "no result line") + f" (exit {c.returncode})"
                print(f"  {check_line}", flush=True)
            rm(peer)  # measured and checked: free its disk before the floor writes as much as incentives
            if not a.keep:
                rm(out)
            steps.append(measure("floor", [py, os.path.join(HERE, "io_floor.py"), landing, "latest",
                                           f"{csv_bytes},{parquet_bytes}", floor], logs_m, floor))
            for r in steps[1:]:
                if r["stdout"].strip():
                    print(f"  {r['name']}: " + r["stdout"].strip().replace("\n", "\n    "))
        rows.append((m, {r["name"]: r for r in steps}))
        text = table(m, partners, run_date, steps, check_line)
        print("\n" + text, flush=True)
        with open(a.results, "a") as f:
            f.write(text + "\n")
        rm(floor)
        if not a.keep:
            rm(out)
            rm(gen)
    text = summary(rows)
    print(text)
    with open(a.results, "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
