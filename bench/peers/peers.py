#!/usr/bin/env python3
"""Helpers for bench/peers/run (standard library only).

  peers.py measure --name NAME --out DIR [--timeout S] -- CMD...
      Runs CMD, keeps its stdout (DIR/NAME.out) and stderr (DIR/NAME.err), and writes
      DIR/NAME.json: the last JSON object CMD printed on stdout, plus what the runner saw:
      wall_s (process start to exit), peak_rss_bytes (ru_maxrss of the process from wait4,
      i.e. its VmHWM), exit code.

  peers.py unavailable --name NAME --out DIR --reason TEXT
      Records that an engine could not be run.

  peers.py report --out DIR --engines a,b,c --meta k=v ... --md FILE --json FILE
      Builds the comparison table from DIR/<engine>.json, prints it, writes FILE.md/FILE.json.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time


def measure(args):
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, args.name)
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    with open(base + ".out", "wb") as out, open(base + ".err", "wb") as err:
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True)
        except OSError as e:
            record = {"engine": args.name, "status": "unavailable", "reason": f"cannot start: {e}"}
            json.dump(record, open(base + ".json", "w"))
            return 0
        timed_out = []

        def kill():
            timed_out.append(True)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(args.timeout, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    result = None
    for line in reversed(open(base + ".out", encoding="utf-8", errors="replace").read().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                result = json.loads(line)
                break
            except json.JSONDecodeError:
                pass
    record = {"engine": args.name, "wall_s": round(wall, 3),
              "peak_rss_bytes": usage.ru_maxrss * 1024, "exit_code": code}
    if timed_out:
        record.update(status="failed", reason=f"timed out after {args.timeout:.0f} s")
    elif code != 0 or result is None:
        tail = open(base + ".err", encoding="utf-8", errors="replace").read().strip().splitlines()[-3:]
        record.update(status="failed",
                      reason=f"exit {code}" + (": " + " | ".join(tail)[-300:] if tail else ""))
    else:
        record.update(status="ok", result=result)
    json.dump(record, open(base + ".json", "w"), indent=1)
    return 0


def unavailable(args):
    os.makedirs(args.out, exist_ok=True)
    record = {"engine": args.name, "status": "unavailable", "reason": args.reason}
    json.dump(record, open(os.path.join(args.out, args.name + ".json"), "w"), indent=1)
    return 0


def fmt_rate(v):
    return f"{v:,.0f}" if isinstance(v, (int, float)) else "n/a"


def fmt_p99(v):
    if not isinstance(v, (int, float)):
        return "n/a"
    if v >= 1000:
        return f"{v / 1000:,.1f} ms"
    return f"{v:,.1f} µs" if v >= 10 else f"{v:.2f} µs"


def fmt_rss(v):
    return f"{v / 2**20:,.0f} MiB" if isinstance(v, (int, float)) else "n/a"


def report(args):
    meta = dict(kv.split("=", 1) for kv in args.meta)
    rows = []
    for name in args.engines.split(","):
        path = os.path.join(args.out, name + ".json")
        rec = json.load(open(path)) if os.path.exists(path) else {
            "engine": name, "status": "unavailable", "reason": "not run"}
        rows.append(rec)

    def rate(rec):
        r = rec.get("result") or {}
        v = r.get("events_per_s")
        if v is None and r.get("events") and r.get("seconds"):
            v = r["events"] / r["seconds"]
        return v if rec.get("status") == "ok" else None

    tid = next((r for r in rows if r["engine"] == "tidings"), None)
    tid_rate = rate(tid) if tid else None
    ceiling = next((r for r in rows if r["engine"] == "ceiling" and r.get("status") == "ok"), None)
    want = None
    if ceiling:
        c = ceiling["result"]
        want = (c.get("matches_12593"), c.get("station_hits"))

    lines = ["| engine | events/s | p99 | peak RSS | tidings ÷ engine | outputs |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    out_rows = []
    for rec in rows:
        name = rec["engine"]
        if rec.get("status") != "ok":
            why = rec.get("reason", "")
            label = "unavailable" if rec.get("status") == "unavailable" else "failed"
            lines.append(f"| {name} | n/a | n/a | n/a | n/a | {label}: {why} |")
            out_rows.append({**rec})
            continue
        r = rec["result"]
        ev = rate(rec)
        ratio = (tid_rate / ev) if tid_rate and ev else None
        if name == "tidings":
            # tidings runs its own pack; show what it says it did, not the peers' two counts.
            keys = [k for k in ("decisions", "actions", "rules", "shards") if k in r]
            outputs = ", ".join(f"{k}: {r[k]:,}" if isinstance(r[k], int) else f"{k}: {r[k]}"
                                for k in keys) or "—"
            outputs += " (its own rule pack and policy)"
        else:
            m, s = r.get("matches_12593"), r.get("station_hits")
            outputs = f"12593: {m:,}, station: {s:,}"
            if r.get("bad"):
                outputs += f", bad: {r['bad']:,}"
            if want and name != "ceiling":
                outputs += " ✓" if (m, s) == want else " ✗ differs from ceiling"
        p99 = r.get("p99_us")
        p99_s = fmt_p99(p99)
        if p99 is None:
            p99_s = "n/a" + (f" (matches: {fmt_p99(r['match_p99_us'])})"
                             if isinstance(r.get("match_p99_us"), (int, float)) else "")
        lines.append(f"| {name} | {fmt_rate(ev)} | {p99_s} | {fmt_rss(rec.get('peak_rss_bytes'))} | "
                     f"{f'{ratio:.2f}×' if ratio else 'n/a'} | {outputs} |")
        out_rows.append({**rec, "events_per_s": ev, "tidings_ratio": ratio})

    head = (f"Events: {int(meta.get('events', 0)):,} ({meta.get('subscribers')} subscribers, "
            f"{meta.get('days')} days, {meta.get('bytes_mb')} MB), file {meta.get('file')}; "
            f"{meta.get('machine')}; {meta.get('date')}.")
    table = head + "\n\n" + "\n".join(lines) + "\n"
    notes = ("\np99: per-event latency from reading the line to the end of its processing "
             "(see README). Peak RSS: the process's high-water mark (wait4 ru_maxrss). "
             "tidings ÷ engine > 1 means tidings is faster.\n")
    print(table + notes)
    open(args.md, "w").write("# Peer comparison\n\n" + table + notes)
    json.dump({"meta": meta, "engines": out_rows}, open(args.json, "w"), indent=1, ensure_ascii=False)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--name", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--timeout", type=float, default=600)
    m.add_argument("cmd", nargs=argparse.REMAINDER)
    u = sub.add_parser("unavailable")
    u.add_argument("--name", required=True)
    u.add_argument("--out", required=True)
    u.add_argument("--reason", required=True)
    r = sub.add_parser("report")
    r.add_argument("--out", required=True)
    r.add_argument("--engines", required=True)
    r.add_argument("--meta", nargs="*", default=[])
    r.add_argument("--md", required=True)
    r.add_argument("--json", required=True)
    a = p.parse_args()
    return {"measure": measure, "unavailable": unavailable, "report": report}[a.what](a)


if __name__ == "__main__":
    sys.exit(main())
