"""Draw the PNG for scripts/bench: plot.py RESULTS.json OUT.png (needs matplotlib)."""

import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"gregor": "#1f77b4", "gregor-nofsync": "#7fb3e0", "tansu": "#ff7f0e", "ceiling": "#9a9a9a"}
ORDER = ["gregor", "gregor-nofsync", "tansu", "ceiling"]


def get(rec, path):
    for k in path.split("."):
        if not isinstance(rec, dict) or k not in rec:
            return None
        rec = rec[k]
    return rec


def stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def cfg_label(size, acks, parts=None):
    s = "1KiB" if size == 1024 else "%dB" % size
    return "%s\nacks=%s%s" % (s, acks, "" if parts is None else "\np%d" % parts)


def grouped(ax, groups, brokers, value, title, ylabel, log=False):
    """groups: list of (label, records); value(records, broker) -> (median, lo, hi) or None."""
    width = 0.8 / max(1, len(brokers))
    for i, br in enumerate(brokers):
        xs, ys, lo, hi = [], [], [], []
        for g, (_, recs) in enumerate(groups):
            m = value(recs, br)
            if m is None:
                continue
            xs.append(g + (i - (len(brokers) - 1) / 2) * width)
            ys.append(m[0])
            lo.append(m[0] - m[1])
            hi.append(m[2] - m[0])
        if xs:
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=br, color=COLOURS.get(br, None))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g[0] for g in groups], fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)


def main():
    data = json.load(open(sys.argv[1]))
    recs = data["records"]
    tp = [r for r in recs if r["kind"] == "throughput"]
    lat = [r for r in recs if r["kind"] == "latency"]
    recov = [r for r in recs if r["kind"] == "recovery"]
    present = [b for b in ORDER if any(r["broker"] == b for r in tp + lat)]

    configs = sorted({(r["size"], r["acks"], r["parts"]) for r in tp}, key=lambda c: (-c[0], c[1] != "1", c[2]))
    groups = [(cfg_label(*c), [r for r in tp if (r["size"], r["acks"], r["parts"]) == c]) for c in configs]

    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    grouped(axes[0][0], groups, present,
            lambda rs, b: stats([get(r, "produce.mb_s") for r in rs if r["broker"] == b]),
            "Produce throughput (median, whiskers min–max)", "MB/s")
    cgroups = [g for g, c in zip(groups, configs) if c[1] == "1"]
    grouped(axes[0][1], cgroups, [b for b in present if b in ("gregor", "tansu")],
            lambda rs, b: stats([get(r, "consume.mb_s") for r in rs if r["broker"] == b]),
            "Consume from the beginning", "MB/s")
    lconfigs = sorted({(r["size"], r["acks"]) for r in lat}, key=lambda c: c[1] != "1")
    lgroups = []
    for c in lconfigs:
        rs = [r for r in lat if (r["size"], r["acks"]) == c]
        for q in ("p50", "p99", "p999"):
            lgroups.append(("%s\n%s" % (cfg_label(*c).replace("\n", " "), q.replace("p999", "p99.9")),
                            [(r, q) for r in rs]))
    grouped(axes[1][0], lgroups, [b for b in present if b != "ceiling"],
            lambda rs, b: stats([get(r, "e2e.%s_ms" % q) for r, q in rs if r["broker"] == b]),
            "End-to-end latency at %s msg/s (log scale)" % data["meta"]["rate"], "ms", log=True)
    ax = axes[1][1]
    bars = []
    first = stats([r.get("first_answer_s") for r in tp + lat if r["broker"] == "gregor"])
    if first:
        bars.append(("gregor\nempty dir", first, COLOURS["gregor"]))
    tfirst = stats([r.get("first_answer_s") for r in tp + lat if r["broker"] == "tansu"])
    if tfirst:
        bars.append(("tansu\nempty (memory)", tfirst, COLOURS["tansu"]))
    if recov:
        gb = statistics.median([r["log_bytes"] / 1e9 for r in recov])
        for key, name in (("clean_s", "clean stop"), ("killed_s", "after SIGKILL")):
            m = stats([r.get(key) for r in recov])
            if m:
                bars.append(("gregor %.1f GB\n%s" % (gb, name), m, COLOURS["gregor"]))
    for i, (name, m, colour) in enumerate(bars):
        ax.bar([i], [m[0] * 1000], 0.6, yerr=[[(m[0] - m[1]) * 1000], [(m[2] - m[0]) * 1000]], capsize=3,
               color=colour)
        ax.text(i, m[0] * 1000, "%.1f ms" % (m[0] * 1000), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([b[0] for b in bars], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms to first ApiVersions answer", fontsize=8)
    ax.set_title("Start-up (log scale)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle("gregor benchmark, %s (%s)" % (data["meta"]["date"], data["meta"]["title"]), fontsize=12)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)


if __name__ == "__main__":
    main()
