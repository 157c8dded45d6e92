"""Compares two eval reports (`npm run eval -- --json A.json ...`) scene by scene.

    python tools/toyworld/compare_reports.py A.json B.json [A2.json B2.json ...] [--tasks red2blue ...]
        [--methods ours-xa0.1 ...] [--against ours-xa0.1]

For every task and method both reports ran on the same scenes: the success of each, the difference in points,
the scenes A loses (B succeeds, A does not) and wins, and the two-sided exact sign test (McNemar) of those
discordant scenes: the chance of a split at least this uneven if A and B were equally good on these scenes. A
difference of a few scenes in 50 is usually within that chance; the table says so instead of a reader guessing.
With `--against METHOD` each method of A is compared with that method of B instead (give a report as its own B to
compare two methods of one run). With several pairs (e.g. the same two banks on several scene sets) it also pools them: the scenes of all pairs
together, one sign test. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from math import comb
from pathlib import Path


def sign_test(lost: int, won: int) -> float:
    """Two-sided exact binomial test of `won` against `lost` discordant scenes at p = 1/2."""
    n = lost + won
    if n == 0:
        return 1.0
    k = min(lost, won)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def scene_verdicts(report: dict, task: str, method: str) -> dict[str, bool]:
    """Success per scene key of one task and method (keys as the report writes them)."""
    out: dict[str, bool] = {}
    for key, image in report["images"].items():
        if not key.startswith(task + "-"):
            continue
        score = image.get("scores", {}).get(method)
        if score is not None and "success" in score:
            out[key] = bool(score["success"])
    return out


YARDSTICKS = ("input", "ideal", "reconstruction")


def compare(a: dict, b: dict, tasks: list[str] | None, methods: list[str] | None,
            against: str | None = None) -> list[dict]:
    """Per task and method of A: its verdicts against B's same method (or B's method `against`), on their common scenes."""
    rows = []
    for task in a["tasks"]:
        if task not in b["tasks"] or (tasks and task not in tasks):
            continue
        for method in a["tasks"][task]["methods"]:
            other = against or method
            if other not in b["tasks"][task]["methods"] or (methods and method not in methods):
                continue
            if not methods and method.startswith(YARDSTICKS):
                continue
            if against is not None and (method == against and a is b):
                continue
            va, vb = scene_verdicts(a, task, method), scene_verdicts(b, task, other)
            common = sorted(set(va) & set(vb))
            if not common:
                continue
            lost = sum(1 for k in common if vb[k] and not va[k])
            won = sum(1 for k in common if va[k] and not vb[k])
            sa = sum(va[k] for k in common) / len(common)
            sb = sum(vb[k] for k in common) / len(common)
            rows.append({"task": task, "method": method, "scenes": len(common), "a": sa, "b": sb,
                         "points": round(100 * (sa - sb)), "lost": lost, "won": won, "p": sign_test(lost, won)})
    return rows


def pool(tables: list[list[dict]]) -> list[dict]:
    """The rows of several comparisons added up per task and method (over the comparisons that have it)."""
    keys = list(dict.fromkeys((r["task"], r["method"]) for t in tables for r in t))
    out = []
    for task, method in keys:
        rows = [r for t in tables for r in t if (r["task"], r["method"]) == (task, method)]
        n = sum(r["scenes"] for r in rows)
        sa = sum(r["a"] * r["scenes"] for r in rows) / n
        sb = sum(r["b"] * r["scenes"] for r in rows) / n
        lost, won = sum(r["lost"] for r in rows), sum(r["won"] for r in rows)
        out.append({"task": task, "method": method, "scenes": n, "a": sa, "b": sb, "points": round(100 * (sa - sb), 1),
                    "lost": lost, "won": won, "p": sign_test(lost, won)})
    return out


def table(rows: list[dict]) -> list[str]:
    lines = ["| task | method | scenes | A | B | A - B (points) | A lost / won | sign test p |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['method']} | {r['scenes']} | {100 * r['a']:.1f} % | {100 * r['b']:.1f} % | "
                     f"{r['points']:+g} | {r['lost']} / {r['won']} | {r['p']:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", type=Path, nargs="+", help="A.json B.json, or several such pairs")
    ap.add_argument("--tasks", nargs="*", help="only these tasks (e.g. red2blue)")
    ap.add_argument("--methods", nargs="*",
                    help="only these methods (e.g. ours-xa0.1 ours-di-lb-xa0.1); default: every edit method, not the "
                         "yardsticks (input, ideal, reconstruction)")
    ap.add_argument("--against", metavar="METHOD",
                    help="compare each method of A with this method of B (B may be A itself: e.g. the final method "
                         "against plain pix2pix-zero, --methods ours-di-lb-xa0.1 --against ours-xa0.1)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    if len(args.reports) % 2:
        print(f"compare_reports: give the reports in pairs (A B [A2 B2 ...]), got {len(args.reports)}", file=sys.stderr)
        return 2
    reports: list[dict] = []
    loaded: dict[Path, dict] = {}  # one object per file, so that A given as its own B is recognised
    for path in args.reports:
        if path.resolve() in loaded:
            reports.append(loaded[path.resolve()])
            continue
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            print(f"compare_reports: cannot read the eval report {path}: {e}", file=sys.stderr)
            return 2
        if not isinstance(report, dict) or "tasks" not in report or "images" not in report:
            print(f"compare_reports: {path} is not an eval report (expected the keys 'tasks' and 'images')",
                  file=sys.stderr)
            return 2
        loaded[path.resolve()] = report
        reports.append(report)
    pairs = list(zip(args.reports[0::2], args.reports[1::2]))
    tables = [compare(reports[2 * i], reports[2 * i + 1], args.tasks, args.methods, args.against) for i in range(len(pairs))]
    for (a, b), rows in zip(pairs, tables):
        if not rows:
            print(f"compare_reports: {a} and {b} share no task, method and scene", file=sys.stderr)
            return 1
    pooled = pool(tables) if len(tables) > 1 else None
    if args.json:
        print(json.dumps({"pairs": [{"a": str(a), "b": str(b), "rows": rows} for (a, b), rows in zip(pairs, tables)],
                          **({"pooled": pooled} if pooled is not None else {})}, indent=1))
        return 0
    for (a, b), rows in zip(pairs, tables):
        print("\n".join([f"A = {a}", f"B = {b}", "", *table(rows), ""]))
    if pooled is not None:
        print("\n".join([f"Pooled over the {len(pairs)} pairs:", "", *table(pooled)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
