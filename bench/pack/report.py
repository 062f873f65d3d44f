#!/usr/bin/env python3
"""bench/pack/run's figures: one run's line, and the table of all runs.

    report.py run PACK ROUND RESULTS < one `tidings bench --json` object
    report.py table RESULTS AGAINST PINNED
"""
import json
import statistics
import sys


def ticks(d):
    """A run's daily ticks in ms (a build before `daily_ticks` has none)."""
    return f"{d['daily_ticks_ms']:,.0f} ms" if "daily_ticks_ms" in d else "not reported"


def run(pack, rnd, results):
    d = json.load(sys.stdin)
    d["pack"], d["round"] = pack, int(rnd)
    with open(results, "a") as f:
        f.write(json.dumps(d) + "\n")
    print(
        f"[pack] round {rnd} {pack:>8}: {d['events_per_s']:,.0f} events/s, {d['decisions']:,} decisions, "
        f"{d['bytes_per_subscriber']} B a subscriber, daily ticks {ticks(d)}",
        file=sys.stderr,
    )


def table(results, against, pinned):
    runs = [json.loads(line) for line in open(results)]

    def median(pack, key):
        return statistics.median(r[key] for r in runs if r["pack"] == pack)

    packs = list(dict.fromkeys(r["pack"] for r in runs))
    names = {p: "rules/ of this build" if p == "shipped" else f"rules/ of {p}, this build" for p in packs}
    names.update({p: f"rules/ of {p.split('@')[0]} on its own build and data" for p in packs if "@" in p})
    print("| pack | events/s (each run) | median | decisions | B a subscriber | daily ticks, median |")
    print("|---|---|---|---|---|---|")
    for pack in packs:
        mine = [r for r in runs if r["pack"] == pack]
        each = " · ".join(f"{r['events_per_s']:,.0f}" for r in mine)
        tick = statistics.median(r["daily_ticks_ms"] for r in mine) if "daily_ticks_ms" in mine[0] else None
        print(
            f"| {names[pack]} | {each} | **{median(pack, 'events_per_s'):,.0f}** | {mine[0]['decisions']:,} | "
            f"{median(pack, 'bytes_per_subscriber'):.0f} | {'—' if tick is None else f'{tick:,.0f} ms'} |"
        )
    how = "one shard pinned to one core" if pinned == "1" else f"{runs[0]['shards']} shard(s), unpinned"
    print()
    print(
        f"{how}, {runs[0]['subscribers']:,} subscribers, {runs[0]['events']:,} events, "
        f"{max(r['round'] for r in runs)} rounds"
    )
    for pack in packs[1:]:
        ratio = median("shipped", "events_per_s") / median(pack, "events_per_s")
        print(f"- shipped pack on this build / {names[pack]}: **{ratio:.2f}**")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "run":
        run(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "table":
        table(*sys.argv[2:])
    else:
        sys.exit(__doc__)
