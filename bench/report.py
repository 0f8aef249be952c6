#!/usr/bin/env python3
"""Turns one bench/run.sh result directory into docs/benchmarks/README.md and an SVG plot.

Standard library only (the plot is hand-written SVG), so the report needs nothing installed.
"""
import glob
import json
import os
import sys

out_dir, doc_dir = sys.argv[1], sys.argv[2]
os.makedirs(doc_dir, exist_ok=True)

NAMES = {
    "sqlite": "Rapporteur, SQLite",
    "postgres": "Rapporteur, PostgreSQL",
    "baseline": "Rapporteur before the fan-out work",
    "stock": "stock automerge-repo sync server",
}
COLORS = {"sqlite": "#1f77b4", "postgres": "#2ca02c", "baseline": "#9467bd", "stock": "#d62728"}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


machine = load(os.path.join(out_dir, "machine.json")) or {}
NAMES["baseline"] = machine.get("baseline_label", NAMES["baseline"])
cold = load(os.path.join(out_dir, "coldload.json"))
cold_before = load(os.path.join(out_dir, "coldload-before.json"))
pg_note = None
if os.path.exists(os.path.join(out_dir, "postgres-unavailable.txt")):
    pg_note = open(os.path.join(out_dir, "postgres-unavailable.txt")).read().strip()


def steps(kind):
    """{server: [(x, report)]} for viewers-<server>-<n> or rate-<server>-<r> runs."""
    found = {}
    for path in glob.glob(os.path.join(out_dir, f"{kind}-*", "report.json")):
        name = os.path.basename(os.path.dirname(path))
        _, server, x = name.rsplit("-", 2)
        r = load(path)
        if r:
            found.setdefault(server, []).append((float(x), r))
    for v in found.values():
        v.sort(key=lambda p: p[0])
    return found


def holds(r, p99_ms):
    """Whether a run held p99 under `p99_ms` with nothing lost or diverged."""
    return (r["latency_ms"]["p99"] < p99_ms and r["lost_edits"] == 0
            and r["viewer_docs_diverged"] == 0 and r["writers_diverged"] == 0
            and r["latency_ms"]["samples"] > 0)


def ok(r):
    return holds(r, 50)


def ms(x):
    # The load generator's histogram ends at 10 s: anything there is "10 s or more".
    return "≥ 10,000" if x >= 10000 else f"{x:.1f}"


def mib(kib):
    return f"{kib / 1024:.0f} MiB" if kib else "n/a"


def num(x, fmt="{:.1f}"):
    return fmt.format(x) if x is not None else "n/a"


meeting = {}
for path in glob.glob(os.path.join(out_dir, "meeting-*", "report.json")):
    server = os.path.basename(os.path.dirname(path)).split("-", 1)[1]
    r = load(path)
    if r:
        meeting[server] = r

lines = []
w = lines.append
w("# Benchmark: Rapporteur against the stock automerge-repo sync server")
w("")
w(f"Produced by `./bench/run.sh` on {machine.get('date', '?')} at commit `{machine.get('commit', '?')}`. "
  "Same load generator (`loadgen/`, `rapporteur-loadgen`), same protocol, same workloads, one server "
  "at a time, fresh database for every run, this build with its default log filter (as deployed). "
  "All numbers are from one run, with the load generator "
  "on the same machine; the load average before it is under \"Machine\".")
w("")
notes = os.path.join(out_dir, "notes.md")
if os.path.exists(notes):
    w("## Notes on this run")
    w("")
    w(open(notes).read().strip())
    w("")
w("## Machine")
w("")
w(f"- CPU: {machine.get('cpu_model', '?')}, `nproc` = {machine.get('nproc', '?')}")
w(f"- Memory: {machine.get('mem_total_kib', 0) / 1024 / 1024:.1f} GiB")
w(f"- Kernel: {machine.get('kernel', '?')}; load average before the run: {machine.get('load_before', '?')}")
w("- The load generator runs on the same two cores as the server under test.")
w("")

cfg = next(iter(meeting.values()), {}).get("config", {})
w("## 1. The meeting")
w("")
w(f"{cfg.get('docs', 7) - 1} group documents plus the index, {cfg.get('writers', '?')} writers at "
  f"{cfg.get('rate_per_writer', '?')} edits/s each, {cfg.get('viewers', '?')} viewers each following every "
  f"document, **{cfg.get('duration_s', '?')} s** of typing. Goal: p99 < 50 ms, nothing lost.")
w("")
w("| server | edits/s accepted (offered) | p50 ms | p99 ms | max ms | changes delivered to viewers | lost edits | diverged viewer docs | server CPU | generator CPU | server peak memory (VmHWM) |")
w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
order = ["sqlite", "postgres", "baseline", "stock"]
for s in order:
    r = meeting.get(s)
    if not r:
        if s == "postgres" and pg_note:
            w(f"| {NAMES[s]} | not available in this build | | | | | | | | | |")
        continue
    l = r["latency_ms"]
    w(f"| {NAMES[s]} | {r['edits_per_s_accepted']:.1f} ({r['edits_per_s_offered']:.1f}) | {ms(l['p50'])} | {ms(l['p99'])} | "
      f"{l['max']:.0f} | {r['changes_to_viewers']:,} of {r['expected_deliveries']:,} | {r['lost_edits']} | "
      f"{r['viewer_docs_diverged']} | {num(r['server']['cpu_percent'], '{:.0f}%')} | "
      f"{num(r.get('loadgen_cpu_percent'), '{:.0f}%')} | {mib(r['server']['vm_hwm_kib'])} |")
w("")
w("CPU is of one core (the machine has two); \"generator CPU\" is the load generator's own, on the same "
  "two cores.")
w("")
if pg_note:
    w(f"PostgreSQL: {pg_note}")
    w("")
a, b = meeting.get("sqlite"), meeting.get("stock")
if a and b:
    def ratio(x, y):
        if not y:
            return "n/a"
        r = x / y
        return f"{r:.1f}×" if r >= 1 else f"{r:.2g}×"
    w("Ratios, Rapporteur (SQLite) to the stock server, same workload:")
    w("")
    w(f"- edits/s accepted: {ratio(a['edits_per_s_accepted'], b['edits_per_s_accepted'])}")
    w(f"- p50 latency: {ratio(a['latency_ms']['p50'], b['latency_ms']['p50'])}, p99 latency: "
      f"{ratio(a['latency_ms']['p99'], b['latency_ms']['p99'])} (lower is better; both capped at 10 s)")
    w(f"- peak memory: {ratio(a['server']['vm_hwm_kib'] or 0, b['server']['vm_hwm_kib'] or 1)}")
    if a["server"]["cpu_s"] and b["server"]["cpu_s"]:
        w(f"- CPU time per accepted edit: {ratio(a['server']['cpu_s'] / max(a['edits_accepted'], 1), b['server']['cpu_s'] / max(b['edits_accepted'], 1))}")
    w("")
c = meeting.get("baseline")
if a and c:
    w(f"{NAMES['baseline']} and now (same workload, same load generator): p50 "
      f"{ms(c['latency_ms']['p50'])} → {ms(a['latency_ms']['p50'])} ms, p99 "
      f"{ms(c['latency_ms']['p99'])} → {ms(a['latency_ms']['p99'])} ms, lost edits "
      f"{c['lost_edits']} → {a['lost_edits']}, writers diverged {c['writers_diverged']} → {a['writers_diverged']}, "
      f"peak memory {mib(c['server']['vm_hwm_kib'])} → {mib(a['server']['vm_hwm_kib'])}, edits/s accepted "
      f"{c['edits_per_s_accepted']:.1f} → {a['edits_per_s_accepted']:.1f}, diverged viewer documents "
      f"{c['viewer_docs_diverged']} → {a['viewer_docs_diverged']}, server CPU "
      f"{num(c['server']['cpu_percent'], '{:.0f}%')} → {num(a['server']['cpu_percent'], '{:.0f}%')}.")
    w("")

w("## 2. Growth")
w("")
viewers = steps("viewers")
rates = steps("rate")
w("Stepped searches; each goes on past the goal while p99 stays under 2 s with nothing lost, then stops; "
  "the table takes the largest step that held p99 < 50 ms with nothing lost. "
  "Viewer steps keep the meeting's 30 writers at 5 edits/s; edit-rate steps keep 100 viewers and "
  "raise each of the 30 writers' rate.")
w("")
w("| server | most viewers holding the goal | most edits/s holding the goal |")
w("| --- | --- | --- |")
for s in order:
    if s not in viewers and s not in rates:
        continue
    vmax = max((int(x) for x, r in viewers.get(s, []) if ok(r)), default=None)
    emax = max((r["edits_per_s_accepted"] for x, r in rates.get(s, []) if ok(r)), default=None)
    w(f"| {NAMES[s]} | {vmax if vmax is not None else 'none of the steps'} | "
      f"{f'{emax:.0f}' if emax is not None else 'none of the steps'} |")
w("")
# Edits/s at the same p99: the most each server accepted, over the edit-rate steps, with p99 under
# each bound. Rapporteur's search stops at its last step, so its figure may be below its limit.
if "stock" in rates and any(s in rates for s in ("sqlite", "postgres")):
    bounds = (50, 100, 250, 500, 1000, 2000)
    ours = [s for s in ("sqlite", "postgres") if s in rates]

    def most(s, bound):
        return max((r["edits_per_s_accepted"] for _, r in rates[s] if holds(r, bound)), default=None)

    def at_least(s, bound):
        """'≥ ' if the server's last step held the bound: its limit is higher than its figure."""
        return "≥ " if holds(rates[s][-1][1], bound) else ""

    w("Edits/s at the same p99 (DESIGN.md §5 asks for at least 10× the stock server's): the most "
      "edits/s each server accepted, with 100 viewers, in an edit-rate step that held p99 under "
      "the bound with nothing lost. \"≥\": the server's last step held it, so its limit is higher.")
    w("")
    w("| p99 under | " + " | ".join(NAMES[s] for s in ours + ["stock"]) + " | ratio, SQLite to stock |")
    w("| --- | " + " | ".join("---" for _ in ours + ["stock"]) + " | --- |")
    for bound in bounds:
        cells = []
        for s in ours + ["stock"]:
            m = most(s, bound)
            cells.append("none of the steps" if m is None else f"{at_least(s, bound)}{m:.0f}")
        sqlite = most("sqlite", bound) if "sqlite" in rates else None
        stock = most("stock", bound)
        if stock is None:
            ratio = "n/a (stock: none)"
        elif sqlite is None:
            ratio = "n/a"
        else:
            ratio = f"{at_least('sqlite', bound)}{sqlite / stock:.0f}×"
        w(f"| {bound:,} ms | " + " | ".join(cells) + f" | {ratio} |")
    w("")
w("Every step (p99 ms; server CPU; server peak memory; edits/s accepted):")
w("")
w("| server | kind | step | p99 ms | p50 ms | CPU | VmHWM | edits/s | lost | diverged |")
w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for kind, table in (("viewers", viewers), ("edits/s per writer", rates)):
    for s in order:
        for x, r in table.get(s, []):
            w(f"| {NAMES[s]} | {kind} | {x:g} | {ms(r['latency_ms']['p99'])} | {ms(r['latency_ms']['p50'])} | "
              f"{num(r['server']['cpu_percent'], '{:.0f}%')} | {mib(r['server']['vm_hwm_kib'])} | "
              f"{r['edits_per_s_accepted']:.0f} | {r['lost_edits']} | {r['viewer_docs_diverged']} |")
w("")
w("![p99 latency against viewers](latency-vs-viewers.svg)")
w("")

# Growth with the document's size: a keystroke, from the cold-load tool's document.
strokes = [(label, c) for label, c in
           ((machine.get("baseline_coldload_label", "before"), cold_before), ("this build", cold))
           if c and c.get("keystrokes")]
if strokes:
    sizes = [k["changes"] for k in strokes[-1][1]["keystrokes"]]
    w("With the document's size: a rapporteur typing one character at the end of a bullet, on the "
      "group outcome document of section 3 a tenth of the way through its typing and whole. "
      "\"Check\" is the server's check of the message that carries it (`schema::accept`, with the "
      "bullet identities cached as the document's actor caches them); \"through the actor\" is the "
      "time from the writer's message to the server's answer, through the document's actor over "
      "SQLite (no sockets): checked, durably stored, received, answered. Every edit a writer sends "
      "goes this way.")
    w("")
    w("| server | keystroke | " + " | ".join(f"{n:,} changes (median / slowest)" for n in sizes) + " |")
    w("| --- | --- |" + " --- |" * len(sizes))
    for label, c in strokes:
        for key, what in (("keystrokes", "check"), ("writer_keystrokes", "through the actor")):
            if c.get(key):
                w(f"| {label} | {what} | "
                  + " | ".join(f"{k['median_ms']:.1f} / {k['max_ms']:.1f} ms" for k in c[key]) + " |")
    w("")

w("## 3. Cold load of a 50,000-change document")
w("")
if cold:
    w(f"A group outcome document with {cold['changes']:,} changes (typing into 100 bullets), stored "
      "through the server's `Store` in SQLite, loaded on the server's path (`Store::load_chunks`, "
      "then `docs::load_doc`). Goal: < 100 ms.")
    w("")
    w("| stored as | chunks | read chunks (median) | load_doc (median) | of which the first chunk alone | total median | total slowest |")
    w("| --- | --- | --- | --- | --- | --- | --- |")
    for key, label in (("compacted", "snapshot + increments (how the server keeps it)"),
                       ("uncompacted", "one chunk per change (never compacted)")):
        c = cold[key]
        first = c.get("load_first_chunk", {}).get("median_ms")
        w(f"| {label} | {c['chunks']:,} | {c['read_chunks']['median_ms']:.1f} ms | {c['load_doc']['median_ms']:.1f} ms | "
          f"{num(first, '{:.1f} ms')} | {c['total']['median_ms']:.1f} ms | {c['total']['max_ms']:.1f} ms |")
    w("")
    # The rows of a table, for this build and, if measured, the build before it.
    builds = [(machine.get("baseline_coldload_label", "before"), cold_before), ("this build", cold)]
    builds = [(label, c) for label, c in builds if c]

    def span(t):
        return f"{t['median_ms']:.1f} / {t['max_ms']:.1f} ms"

    early = cold["compacted"].get("answer_from_storage")
    if early:
        w("A peer that holds nothing of the document (a new device) does not wait for the load: the "
          "server answers it from the stored chunks while automerge loads them "
          "(`Store::load_chunks`, then `docs::answer_from_storage`; the peer's copy is checked to hold "
          f"every change). Median {early['median_ms']:.1f} ms, slowest {early['max_ms']:.1f} ms, "
          f"{early['bytes'] / 1024:,.0f} KiB. A document far past its compaction (the second row) is "
          "always loaded first: a peer loads a long run of single changes much more slowly than one "
          "snapshot.")
        w("")

    compactions = cold.get("compactions")
    if compactions:
        w(f"Compacting the stored document (the snapshot and {cold['compacted']['chunks'] - 1} "
          "increments above) into one snapshot, as the server does every 256 chunks "
          "(`docs::compact`, each over a fresh store, checked to hold every change): from the "
          "document the actor holds in memory, when its heads are the stored chunks' and nothing "
          "waits in its queue, and otherwise by loading the chunks.")
        w("")
        w("| compaction | median | slowest |")
        w("| --- | --- | --- |")
        for key, label in (("from_memory", "saving the document in memory"),
                           ("from_chunks", "loading the chunks, then saving")):
            t = compactions[key]
            w(f"| {label} | {t['median_ms']:.1f} ms | {t['max_ms']:.1f} ms |")
        w("")

    returning = [(label, c["returning"]) for label, c in builds if c.get("returning")]
    if returning:
        w("Devices that hold the document coming back to it while it is cold (after a "
          "restart, or once it was unloaded for being idle), each through a fresh document registry "
          "over the same store (no sockets): milliseconds from the device's first message to the "
          "server's answer, which names the document's heads and brings the device every change it "
          "lacks (checked); the load finishes before the next device comes. A device that kept its "
          "sync state with the server (automerge-repo keeps it for a server that names a storage id, "
          "as Rapporteur does) summarises what it holds since the heads they shared; one that did "
          "not, every change."
          + (f" A device that missed the last {returning[-1][1]['behind']['missed']} changes is sent them."
             if "behind" in returning[-1][1] else ""))
        w("")
        variants = [("kept_state", "in step, kept its sync state"), ("fresh_state", "in step, did not"),
                    ("behind", "missed the last changes, kept its state")]
        variants = [(key, name) for key, name in variants if all(key in r for _, r in returning)]
        w("| server | " + " | ".join(f"{name} (median / slowest)" for _, name in variants)
          + " | answered before the load |")
        w("| --- |" + " --- |" * (len(variants) + 1))
        for label, r in returning:
            answered = sum(r[key]["answered_before_load"] for key, _ in variants)
            devices = sum(r[key]["devices"] for key, _ in variants)
            w(f"| {label} | " + " | ".join(span(r[key]) for key, _ in variants)
              + f" | {answered} of {devices} |")
        w("")

    joins = [(label, c["joins"]) for label, c in builds if c.get("joins")]
    if joins:
        n = joins[-1][1]["joins"]
        w(f"New devices joining the document, one after another, through the server's document "
          "registry and actor (no sockets): milliseconds from a peer's first request to the answer "
          "that carries the whole document (checked: the peer loads it to the document's heads); "
          "each peer leaves before the next comes. The first finds the document cold;"
          f" then {n} join the loaded document with its heads unchanged, and {n} "
          "after a server edit each (heads changed).")
        w("")
        w("| server | first join, cold | loaded, heads unchanged (median / slowest) | loaded, heads changed (median / slowest) |")
        w("| --- | --- | --- | --- |")
        for label, j in joins:
            w(f"| {label} | {j['cold_ms']:.1f} ms | {span(j['heads_unchanged'])} | {span(j['heads_changed'])} |")
        w("")

w("## How to read this")
w("")
w("- Latency is from the moment a writer hands its change to its socket to the moment a viewer "
  "has decoded it, on one clock (the load generator's), for every (edit, viewer) pair.")
w("- Rapporteur writes each change durably (SQLite, WAL, `synchronous = FULL`) before any peer sees "
  "it; the stock server acknowledges from memory and saves in the background. The latency column "
  "includes Rapporteur's durable commit.")
w("- Viewers keep only the heads of each document after their first fetch (see `loadgen/src/client.rs`): "
  "the server does all the work it does for real viewers, while the generator spares itself theirs. "
  "It still needs a large share of the machine at the meeting's load (the \"generator CPU\" column): "
  "a thousand viewers' frames and answers, and 30 writers that are full Automerge peers.")
w("- /metrics exposes the server side of the same quantities: `rapporteur_changes_accepted_total` "
  "(edits/s as a rate), `rapporteur_fanout_latency_seconds`, `rapporteur_store_latency_seconds`, "
  "`rapporteur_messages_out_total`, `rapporteur_fanout_generated_total`, "
  "`rapporteur_fanout_fast_total`, `rapporteur_fanout_held_total`, "
  "`rapporteur_answered_before_load_total`, "
  "`rapporteur_receives_shared_total`, `rapporteur_receives_fast_total`, "
  "`process_cpu_seconds_total`, `process_resident_memory_bytes`.")
w("")
with open(os.path.join(doc_dir, "README.md"), "w") as f:
    f.write("\n".join(lines))

# The plot: p99 against viewers, log-scaled latency.
import math

W, H, L, R, T, B = 900, 420, 70, 380, 30, 50
xs = [x for v in viewers.values() for x, _ in v] or [1]
xmax = max(xs) * 1.05
ys = [max(r["latency_ms"]["p99"], 0.1) for v in viewers.values() for _, r in v] or [1]
ymin, ymax = 1.0, max(max(ys) * 1.5, 100)


def px(x):
    return L + (W - L - R) * x / xmax


def py(y):
    y = min(max(y, ymin), ymax)
    return T + (H - T - B) * (1 - (math.log10(y) - math.log10(ymin)) / (math.log10(ymax) - math.log10(ymin)))


svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{L}" y="18" font-size="14">p99 edit-to-viewer latency against viewers (30 writers × 5 edits/s)</text>',
       f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
       f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>']
decade = 1.0
while decade <= ymax:
    for m in (1, 2, 5):
        y = decade * m
        if ymin <= y <= ymax:
            svg.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" stroke="#ddd"/>')
            svg.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    decade *= 10
svg.append(f'<line x1="{L}" y1="{py(50):.1f}" x2="{W - R}" y2="{py(50):.1f}" stroke="#888" stroke-dasharray="6 4"/>')
svg.append(f'<text x="{W - R + 4}" y="{py(50) + 4:.1f}" fill="#555">goal: 50 ms</text>')
for x in sorted(set(xs)):
    svg.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:g}</text>')
svg.append(f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">viewers (each following 7 documents)</text>')
svg.append(f'<text x="16" y="{(T + H - B) / 2}" transform="rotate(-90 16 {(T + H - B) / 2})" text-anchor="middle">p99 ms (log)</text>')
for i, s in enumerate(order):
    pts = viewers.get(s)
    if not pts:
        continue
    path = " ".join(f"{px(x):.1f},{py(r['latency_ms']['p99']):.1f}" for x, r in pts)
    svg.append(f'<polyline points="{path}" fill="none" stroke="{COLORS[s]}" stroke-width="2"/>')
    for x, r in pts:
        svg.append(f'<circle cx="{px(x):.1f}" cy="{py(r["latency_ms"]["p99"]):.1f}" r="3" fill="{COLORS[s]}"/>')
    svg.append(f'<rect x="{W - R + 10}" y="{T + 20 * i}" width="12" height="12" fill="{COLORS[s]}"/>')
    svg.append(f'<text x="{W - R + 28}" y="{T + 20 * i + 10}">{NAMES[s]}</text>')
svg.append("</svg>")
with open(os.path.join(doc_dir, "latency-vs-viewers.svg"), "w") as f:
    f.write("\n".join(svg))
