#!/usr/bin/env python3
"""bench/pack/run's figures: one run's line, and the table of all runs.

    report.py run PACK ROUND RESULTS < one `tidings bench --json` object
    report.py table RESULTS AGAINST PINNED
"""
import json
import statistics
import sys


def run(pack, rnd, results):
    d = json.load(sys.stdin)
    d["pack"], d["round"] = pack, int(rnd)
    with open(results, "a") as f:
        f.write(json.dumps(d) + "\n")
    print(
        f"[pack] round {rnd} {pack:>8}: {d['events_per_s']:,.0f} events/s, {d['decisions']:,} decisions, "
        f"{d['bytes_per_subscriber']} B a subscriber, daily ticks {d['daily_ticks_ms']:,.0f} ms",
        file=sys.stderr,
    )


def table(results, against, pinned):
    runs = [json.loads(line) for line in open(results)]

    def median(pack, key):
        return statistics.median(r[key] for r in runs if r["pack"] == pack)

    print("| pack | events/s (each run) | median | decisions | B a subscriber | daily ticks, median ms |")
    print("|---|---|---|---|---|---|")
    for pack, name in (("shipped", "rules/ of this build"), (against, f"rules/ of {against}")):
        each = " · ".join(f"{r['events_per_s']:,.0f}" for r in runs if r["pack"] == pack)
        dec = next(r["decisions"] for r in runs if r["pack"] == pack)
        print(
            f"| {name} | {each} | **{median(pack, 'events_per_s'):,.0f}** | {dec:,} | "
            f"{median(pack, 'bytes_per_subscriber'):.0f} | {median(pack, 'daily_ticks_ms'):,.0f} |"
        )
    ratio = median("shipped", "events_per_s") / median(against, "events_per_s")
    how = "one shard pinned to one core" if pinned == "1" else f"{runs[0]['shards']} shard(s), unpinned"
    print()
    print(
        f"shipped/{against}: **{ratio:.2f}** ({how}, {runs[0]['subscribers']:,} subscribers, "
        f"{runs[0]['events']:,} events, {max(r['round'] for r in runs)} rounds)"
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "run":
        run(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "table":
        table(*sys.argv[2:])
    else:
        sys.exit(__doc__)
