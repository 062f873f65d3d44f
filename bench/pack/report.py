#!/usr/bin/env python3
"""bench/pack/run's figures: one run's line, and the table of all runs.

    report.py run PACK ROUND RESULTS [BESIDE CORE] < one `tidings bench --json` object
    report.py table RESULTS AGAINST PINNED

BESIDE names the pack a run ran at the same time as (side by side, `--side-by-side`) and CORE
the core it was pinned to.
"""
import json
import math
import statistics
import sys


def ticks(d):
    """A run's daily ticks in ms (a build before `daily_ticks` has none)."""
    return f"{d['daily_ticks_ms']:,.0f} ms" if "daily_ticks_ms" in d else "not reported"


def run(pack, rnd, results, beside=None, core=None):
    d = json.load(sys.stdin)
    d["pack"], d["round"] = pack, int(rnd)
    if beside is not None:
        d["beside"], d["core"] = beside, int(core)
    with open(results, "a") as f:
        f.write(json.dumps(d) + "\n")
    where = "" if beside is None else f" (core {core}, beside {beside})"
    print(
        f"[pack] round {rnd} {pack:>8}{where}: {d['events_per_s']:,.0f} events/s, {d['decisions']:,} decisions, "
        f"{d['bytes_per_subscriber']} B a subscriber, daily ticks {ticks(d)}",
        file=sys.stderr,
    )


def table(results, against, pinned):
    runs = [json.loads(line) for line in open(results)]
    if any("beside" in r for r in runs):
        return pairs(runs)

    def median(pack, key):
        return statistics.median(r[key] for r in runs if r["pack"] == pack)

    packs = list(dict.fromkeys(r["pack"] for r in runs))
    names = names_of(packs)
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


def names_of(packs):
    names = {p: "rules/ of this build" if p == "shipped" else f"rules/ of {p}, this build" for p in packs}
    names.update({p: f"rules/ of {p.split('@')[0]} on its own build and data" for p in packs if "@" in p})
    return names


def pairs(runs):
    """Side by side: each round ran the shipped pack and one other at the same moment, one on
    each core; the ratio of a round is shipped/other, the summary their geometric mean."""
    others = list(dict.fromkeys(r["pack"] for r in runs if r["pack"] != "shipped"))
    names = names_of(["shipped", *others])
    d0 = runs[0]
    print(
        f"Side by side, one shard each, both at once on cores 0 and 1 (swapped every round); "
        f"{d0['subscribers']:,} subscribers, {d0['events']:,} events"
    )
    for other in others:
        print()
        print(f"| round | shipped pack, this build (core) | {names[other]} (core) | ratio |")
        print("|---|---|---|---|")
        ratios = []
        for o in (r for r in runs if r["pack"] == other):
            s = next(r for r in runs if r["pack"] == "shipped" and r.get("beside") == other and r["round"] == o["round"])
            ratio = s["events_per_s"] / o["events_per_s"]
            ratios.append(ratio)
            print(
                f"| {o['round']} | {s['events_per_s']:,.0f} ({s['core']}) | {o['events_per_s']:,.0f} ({o['core']}) "
                f"| {ratio:.3f} |"
            )
        mean = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        print()
        print(
            f"- shipped pack on this build / {names[other]}: geometric mean **{mean:.3f}** over "
            f"{len(ratios)} rounds (from {min(ratios):.3f} to {max(ratios):.3f}; "
            f"{sum(x >= 0.9 for x in ratios)} at 0.9 or over)"
        )


if __name__ == "__main__":
    if len(sys.argv) in (5, 7) and sys.argv[1] == "run":
        run(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "table":
        table(*sys.argv[2:])
    else:
        sys.exit(__doc__)
