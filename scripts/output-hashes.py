#!/usr/bin/env python3
"""Fingerprints of what `incentives run` published, for checking that a change to the code
leaves every output byte-identical (issue 23: "compare all output hashes before and after").

    python3 scripts/output-hashes.py BIN WORK [--big N]

runs the binary BIN over the bundled sample data (every month end it covers), over the shared
conformance cases when `../shared/conformance` is present (SHARED=... to point elsewhere;
skipped with a note otherwise), and with --big N over a generated landing zone of N transaction
lines, and prints one line per published file: `<run> <path> <sha256>`. The manifest's
run-specific fields (started_at, finished_at, published_from) are blanked before hashing; all
other bytes count. Diff the output of two binaries:

    python3 scripts/output-hashes.py /tmp/old/incentives /tmp/w1 --big 1000000 > before.txt
    python3 scripts/output-hashes.py target/debug/incentives /tmp/w2 --big 1000000 > after.txt
    diff before.txt after.txt
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTERNAL = {"_runs", "_current", "_locks"}


def published(out):
    """(relative path, sha256) of every published file under `out`, following the date links."""
    rows = []
    for top in sorted(os.listdir(out)):
        if top in INTERNAL:
            continue
        for dirpath, dirnames, filenames in os.walk(os.path.join(out, top), followlinks=True):
            dirnames.sort()
            for f in sorted(filenames):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, out)
                data = open(path, "rb").read()
                if f == "manifest.json":
                    m = json.loads(data)
                    for k in ("started_at", "finished_at", "published_from"):
                        m[k] = None
                    data = json.dumps(m, indent=2, sort_keys=False).encode()
                rows.append((rel, hashlib.sha256(data).hexdigest()))
    return rows


def run(bin_, label, args, out):
    r = subprocess.run([bin_, "run", "-q", "--output", out] + args, capture_output=True, text=True)
    print(f"{label} exit {r.returncode}")
    for rel, sha in published(out):
        print(f"{label} {rel} {sha}")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    bin_, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    big = int(sys.argv[sys.argv.index("--big") + 1]) if "--big" in sys.argv else 0
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chdir(ROOT)
    out = os.path.join(work, "sample")
    for d in ["2026-07-31", "2026-08-31", "2026-09-30", "2026-10-31", "2026-11-30"]:
        run(bin_, f"sample/{d}", ["--date", d], out)
    shared = os.path.join(os.environ.get("SHARED", os.path.join(ROOT, "..", "shared")), "conformance")
    if os.path.isdir(shared):
        for case in sorted(os.listdir(shared)):
            cdir = os.path.join(shared, case)
            if not os.path.isfile(os.path.join(cdir, "dates.txt")):
                continue
            extra = open(os.path.join(cdir, "args.txt")).read().split() if os.path.exists(os.path.join(cdir, "args.txt")) else []
            out = os.path.join(work, case)
            for d in open(os.path.join(cdir, "dates.txt")).read().split():
                run(bin_, f"{case}/{d}", ["--input", f"{cdir}/landing", "--programs", f"{cdir}/pipelines", "--date", d] + extra, out)
    else:
        print(f"# no conformance cases at {shared}: skipped", file=sys.stderr)
    if big:
        zone = os.path.join(work, "zone")
        subprocess.run([bin_, "generate", "-q", "--output", zone, "--transactions", str(big),
                        "--partners", str(max(big // 50, 100)), "--seed", "1"], check=True)
        d = sorted(os.listdir(os.path.join(zone, "landing", "transactions")))[-1][:10]
        run(bin_, f"zone/{d}", ["--input", f"{zone}/landing", "--programs", f"{zone}/pipelines", "--date", d],
            os.path.join(work, "zone-out"))


main()
