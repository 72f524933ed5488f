"""The report of a finished run: the text table (stdout), docs/benchmarks.md (figures, targets,
the reading computed from them, the hand-written block kept as it is, and how each figure is
measured), the JSON rows (--json) and the callgrind table. The plot is plot.py."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import (CPU_MONITORS, DEPTHS, FACES, GUEST_MEMORY, HAND_BEGIN, HAND_END, KICK_OF,
                     MONITORS, QBOOT, Settings, on)
from harness import iobench

from . import snapshot
from .plot import Svg
from .stats import Results


@dataclass
class Facts:
    """What the report needs to know of the run."""
    rows: list[str]
    s: Settings
    results: Results
    machine: dict
    command: str
    date: str
    elapsed: float
    tsc_khz: int
    qemu_cache: str
    direct: bool
    linux_note: str
    spawn_ms: float = 0.0
    flakes: dict = field(default_factory=dict)  # "row monitor" -> L1 flakes tried again


def fmt_ns(v: float) -> str:
    return f"{v:,.0f}"


class Report:
    def __init__(self, facts: Facts):
        self.b = facts
        self.r = facts.results
        self.m = facts.machine

    def st(self, *key):
        return self.r.stats(tuple(key))

    # ---- the figures as rows of cells ----

    def table_rows(self) -> list[list[str]]:
        rows = []
        head = ["row", "monitor", "transport", "ioeventfd", "depth", "median", "min", "max",
                "unit", "runs", "note"]
        rows.append(head)
        if "kick" in self.b.rows:
            for face in FACES:
                for ioev in (True, False):
                    floor = self.st("kick", "floor", face, ioev, 0)
                    for mon in ("floor-nodrain",) + MONITORS:
                        s = self.st("kick", mon, face, ioev, 0)
                        if not s:
                            continue
                        note = ""
                        if mon == "floor-nodrain":
                            note = "reference: eventfd never read, no wake-up per kick"
                        elif mon != "floor" and floor:
                            note = f"{s['median'] / floor['median']:.2f}x floor"
                        rows.append(["kick", mon, f"{face} {KICK_OF[face]}", on(ioev), "",
                                     fmt_ns(s["median"]), fmt_ns(s["min"]), fmt_ns(s["max"]),
                                     "ns/kick", str(s["runs"]), note])
        if "switch" in self.b.rows:
            for face in FACES:
                on_ = self.st("switch", "ember", face, True, 0)
                for ioev in (True, False):
                    s = self.st("switch", "ember", face, ioev, 0)
                    if not s:
                        continue
                    note = "one session, switched by PATCH /ember/devices between rounds"
                    if not ioev and on_:
                        note = f"{s['median'] / on_['median']:.2f}x the ioeventfd kick, same session"
                    rows.append(["kick, switched", "ember", f"{face} {KICK_OF[face]}", on(ioev),
                                 "", fmt_ns(s["median"]), fmt_ns(s["min"]), fmt_ns(s["max"]),
                                 "ns/kick", str(s["runs"]), note])
        if "blk" in self.b.rows:
            for face in FACES:
                for ioev in (True, False):
                    for depth in DEPTHS:
                        q = self.st("blk", "qemu", face, ioev, depth)
                        for mon in self.blk_monitors():
                            s = self.st("blk", mon, face, ioev, depth)
                            if not s:
                                continue
                            note = f"{1e9 / s['median']:,.0f} req/s"
                            if mon.startswith("ember") and q:
                                note += f", {s['median'] / q['median']:.2f}x QEMU"
                            rows.append(["blk read 4K", mon, f"{face} {KICK_OF[face]}", on(ioev),
                                         str(depth), fmt_ns(s["median"]), fmt_ns(s["min"]),
                                         fmt_ns(s["max"]), "ns/req", str(s["runs"]), note])
        if "cpu" in self.b.rows:
            for depth in DEPTHS:
                q = self.st("cpu-blk", "qemu", "modern", True, depth)
                for mon in CPU_MONITORS:
                    s = self.st("cpu-blk", mon, "modern", True, depth)
                    if not s:
                        continue
                    note = "host CPU, all threads, guest halts while waiting"
                    if mon != "qemu" and q:
                        note = f"{s['median'] / q['median']:.2f}x QEMU"
                    rows.append(["blk CPU time", mon, "modern MMIO", "on", str(depth),
                                 f"{s['median']:.2f}", f"{s['min']:.2f}", f"{s['max']:.2f}",
                                 "us/req", str(s["runs"]), note])
        if "irq" in self.b.rows:
            for face in FACES:
                floor = self.st("irq", "floor", face, True, 0)
                for mon in MONITORS:
                    s = self.st("irq", mon, face, True, 0)
                    if not s:
                        continue
                    note = "kick + MSI" if mon == "floor" else "1-byte virtio-rng read"
                    if mon != "floor" and floor:
                        note += f", {s['median'] / floor['median']:.2f}x floor"
                    rows.append(["irq round trip", mon, f"{face} {KICK_OF[face]}", "on", "",
                                 fmt_ns(s["median"]), fmt_ns(s["min"]), fmt_ns(s["max"]),
                                 "ns/irq", str(s["runs"]), note])
        if "startup" in self.b.rows:
            for row, label, unit, note in (
                    ("startup", "start-up", "ms", "process start to exit, guest exits at once"),
                    ("rss", "max RSS", "MiB", "")):
                for mon in ("ember", "qemu"):
                    s = self.st(row, mon, "", False, 0)
                    if s:
                        rows.append([label, mon if mon == "ember" else "qemu microvm", "", "", "",
                                     f"{s['median']:.1f}", f"{s['min']:.1f}", f"{s['max']:.1f}",
                                     unit, str(s["runs"]), note])
        if "snapshot" in self.b.rows:
            rows += snapshot.rows_of(self.st)
        if "linux" in self.b.rows:
            for row, label, note in (
                    ("linux", "linux (L1)", "tools/linux-boot --no-devices: the monitor's run in "
                     "the emulated-SVM L1, start to exit"),
                    ("linux-init", "linux init (L1)", "the guest kernel's uptime when /init started")):
                for mon in ("ember", "qemu"):
                    s = self.st(row, mon, "", False, 0)
                    if s:
                        rows.append([label, mon if mon == "ember" else "qemu microvm", "", "", "",
                                     f"{s['median']:.2f}", f"{s['min']:.2f}", f"{s['max']:.2f}",
                                     "s", str(s["runs"]), note])
        if "linux-io" in self.b.rows:
            labels = {"ember": "ember", "qemu": "qemu q35", "ember vhost": "ember vhost=on",
                      "qemu vhost": "qemu q35 vhost=on"}
            for name in iobench.NAMES:
                for mon in iobench.MONITORS:
                    s = self.st("io-" + name, mon, "", False, 0)
                    if not s:
                        continue
                    peer = "qemu vhost" if mon.endswith("vhost") else "qemu"
                    q = self.st("io-" + name, peer, "", False, 0)
                    peer_name = "QEMU vhost=on" if peer == "qemu vhost" else "QEMU"
                    note = (f"{s['median'] / q['median']:.2f}x {peer_name} (higher is better)"
                            if mon.startswith("ember") and q else "")
                    rows.append([f"linux io {name} (L1)", labels[mon], "modern", "on", "",
                                 f"{s['median']:,.1f}", f"{s['min']:,.1f}", f"{s['max']:,.1f}",
                                 iobench.UNITS[name], str(s["runs"]), note])
        return rows

    def text_table(self) -> str:
        rows = self.table_rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        numeric = {5, 6, 7, 9}
        out = [self.title()]
        for r in rows:
            cells = [c.rjust(widths[i]) if i in numeric else c.ljust(widths[i])
                     for i, c in enumerate(r)]
            out.append("  ".join(cells).rstrip())
        if self.r.failures:
            out.append(f"{len(self.r.failures)} run(s) FAILED; see the log above")
        return "\n".join(out)

    def markdown_table(self) -> str:
        rows = self.table_rows()
        out = ["| " + " | ".join(rows[0]) + " |",
               "|" + "|".join("---:" if i in (4, 5, 6, 7, 9) else "---" for i in range(len(rows[0]))) + "|"]
        for r in rows[1:]:
            out.append("| " + " | ".join(r) + " |")
        return "\n".join(out)

    def title(self) -> str:
        return (f"Ember benchmarks, {self.b.date}: {self.m['cpu']} x{self.m['cores']}, "
                f"KVM {self.m['kvm_short']}, QEMU {self.m['qemu']}")

    def callgrind_table(self) -> str:
        out = [f"User-space instructions per operation (valgrind --tool=callgrind), {self.b.date}",
               f"{'operation':22} {'transport':12} {'ioeventfd':9} " +
               " ".join(f"{m:>10}" for m in MONITORS)]
        names = {"instr-kick": "kick", "instr-blk": "blk read 4K, depth 1",
                 "instr-irq": "irq round trip"}
        keys = sorted({(k[0], k[2], k[3]) for k in self.r.samples if k[0].startswith("instr-")},
                      key=lambda k: (list(names).index(k[0]), k[1], not k[2]))
        for row, face, ioev in keys:
            cells = []
            for mon in MONITORS:
                depth = 1 if row == "instr-blk" else 0
                st = self.st(row, mon, face, ioev, depth)
                cells.append(f"{st['median']:>10,.0f}" if st else f"{'-':>10}")
            out.append(f"{names[row]:22} {face + ' ' + KICK_OF[face]:12} {on(ioev):9} " +
                       " ".join(cells))
        if self.r.failures:
            out.append(f"{len(self.r.failures)} run(s) FAILED; see the log above")
        return "\n".join(out)

    # ---- JSON ----

    def json_rows(self) -> list[dict]:
        objs = []
        r3 = lambda v: round(v, 1)
        for key in sorted(self.r.samples, key=lambda k: (row_order(k[0]), str(k))):
            row, mon, face, ioev, depth = key
            s = self.r.stats(key)
            o: dict = {"row": row, "monitor": mon}
            if row in ("kick", "switch", "blk", "irq", "instr-kick", "instr-blk", "instr-irq"):
                o["transport"] = face
                o["kick"] = KICK_OF[face]
                o["ioeventfd"] = ioev
            if row == "cpu-blk":
                o["transport"] = face
                o["ioeventfd"] = ioev
            if row in ("blk", "instr-blk", "cpu-blk"):
                o["depth"] = depth
                o["op"] = "read 4 KiB"
            if row == "irq":
                o["request"] = "kick+MSI" if mon == "floor" else "virtio-rng 1 byte"
            unit = {"kick": "ns", "switch": "ns", "blk": "ns", "irq": "ns", "cpu-blk": "us CPU", "startup": "ms",
                    "rss": "MiB", "cold-boot": "ms", "snapshot-create": "ms", "restore": "ms",
                    "restore-in": "ms", "mem-file": "MiB", "mem-disk": "MiB",
                    "linux": "s", "linux-init": "s",
                    **{"io-" + n: u for n, u in iobench.UNITS.items()}}.get(row, "instructions")
            o.update({"median": r3(s["median"]), "min": r3(s["min"]), "max": r3(s["max"]),
                      "unit": unit, "runs": s["runs"]})
            if row == "blk":
                o["rps_median"] = round(1e9 / s["median"])
                o["rps_min"] = round(1e9 / s["max"])
                o["rps_max"] = round(1e9 / s["min"])
            objs.append(o)
        return objs

    def blk_monitors(self) -> list[str]:
        """ember, then each `ember aio=E` of --blk-engines, then qemu."""
        engines = sorted({k[1] for k in self.r.samples
                          if k[0] == "blk" and k[1].startswith("ember aio=")})
        return ["ember"] + engines + ["qemu"]

    def blk_medians(self):
        """(face, ioeventfd, depth, Ember's median, QEMU's median or None) for each blk case."""
        for face in FACES:
            for ioev in (True, False):
                for depth in DEPTHS:
                    yield (face, ioev, depth, *((self.st("blk", mon, face, ioev, depth) or {})
                                                .get("median") for mon in ("ember", "qemu")))

    # ---- targets ----

    def targets(self) -> list[tuple[str, str, str]]:
        """(target, verdict, detail) for each target of the benchmark issue."""
        out = []
        med = lambda *k: (self.st(*k) or {}).get("median")
        if "kick" in self.b.rows:
            parts, ok = [], True
            for face in FACES:
                for ioev in (True, False):
                    e, f = med("kick", "ember", face, ioev, 0), med("kick", "floor", face, ioev, 0)
                    if e is None or f is None:
                        ok = False
                        continue
                    d = e / f - 1
                    ok &= d <= 0.10
                    parts.append(f"{face} {KICK_OF[face]} ioeventfd {on(ioev)}: {d * 100:+.0f}%")
            out.append(("Ember's kick cost within 10% of the floor", verdict(ok, parts),
                        "; ".join(parts)))
            parts, ok = [], True
            for mon in ("ember", "floor", "qemu"):
                for face in FACES:
                    a, b = med("kick", mon, face, True, 0), med("kick", mon, face, False, 0)
                    if a is None or b is None:
                        continue
                    if mon == "ember":
                        ok &= b / a >= 3
                    parts.append(f"{mon} {face}: {b / a:.2f}x")
            out.append(("ioeventfd kicks >= 3x cheaper than userspace kicks (Ember)",
                        verdict(ok, parts), "; ".join(parts)))
        if "switch" in self.b.rows:
            parts, ok = [], True
            for face in FACES:
                a, b = med("switch", "ember", face, True, 0), med("switch", "ember", face, False, 0)
                if a is None or b is None:
                    ok = False
                    continue
                ok &= b / a >= 3
                parts.append(f"{face} {KICK_OF[face]}: {b / a:.2f}x")
            out.append(("ioeventfd kicks >= 3x cheaper than userspace kicks, one session (Ember)",
                        verdict(ok, parts), "; ".join(parts)))
        if "blk" in self.b.rows:
            parts, ok = [], True
            for face, ioev, depth, e, q in self.blk_medians():
                if e is None or q is None:
                    ok = False
                    continue
                ok &= e / q <= 0.8
                parts.append(f"{face} ioeventfd {on(ioev)} depth {depth}: {e / q:.2f}x")
            out.append(("Ember's per-request cost <= 0.8x QEMU's", verdict(ok, parts),
                        "; ".join(parts)))
        if "snapshot" in self.b.rows and (g := snapshot.goal(med)) is not None:
            out.append(("restore < 10 ms on /dev/kvm, any memory size", verdict(g[0], [1]), g[1]))
        if "startup" in self.b.rows:
            t, rss = med("startup", "ember", "", False, 0), med("rss", "ember", "", False, 0)
            if t is not None:
                out.append(("start-up < 10 ms (trivial guest)", verdict(t < 10, [1]),
                            f"Ember {t:.1f} ms (QEMU microvm {med('startup', 'qemu', '', False, 0) or 0:.1f} ms)"))
            if rss is not None:
                out.append(("max RSS < 4 MiB (trivial guest)", verdict(rss < 4, [1]),
                            f"Ember {rss:.1f} MiB (QEMU microvm {med('rss', 'qemu', '', False, 0) or 0:.1f} MiB)"))
        if "linux" in self.b.rows:
            e, q = med("linux", "ember", "", False, 0), med("linux", "qemu", "", False, 0)
            if e is not None and q is not None:
                out.append(("Linux boot in the L1 <= 0.7x QEMU's time", verdict(e / q <= 0.7, [1]),
                            f"run to power-off: Ember {e:.2f} s, QEMU microvm {q:.2f} s "
                            f"({e / q:.2f}x)"))
        return out

    # ---- the reading, in sentences computed from the figures ----

    def reading(self) -> list[str]:
        med = lambda *k: (self.st(*k) or {}).get("median")
        out = []
        if "kick" in self.b.rows:
            for ioev in (True, False):
                bits = []
                for face in FACES:
                    f, e, q = (med("kick", m, face, ioev, 0) for m in MONITORS)
                    if None in (f, e, q):
                        continue
                    bits.append(f"{face} {KICK_OF[face]}: floor {f / 1000:.2f} us, Ember "
                                f"{e / 1000:.2f} us ({(e / f - 1) * 100:+.0f}%), QEMU {q / 1000:.2f} us "
                                f"({(q / f - 1) * 100:+.0f}%)")
                if bits:
                    out.append(f"Kicks with ioeventfd {on(ioev)}: " + "; ".join(bits) + ".")
        if "blk" in self.b.rows:
            wins, losses = [], []
            for face, ioev, depth, e, q in self.blk_medians():
                if e is None or q is None:
                    continue
                what = f"{face} ioeventfd {on(ioev)} depth {depth} ({e / q:.2f}x)"
                (wins if e < q else losses).append(what)
            if wins:
                out.append("Ember serves 4 KiB reads faster than QEMU for " + ", ".join(wins) + ".")
            if losses:
                out.append("QEMU is faster (or equal) for " + ", ".join(losses) + ".")
        if "cpu" in self.b.rows:
            bits = []
            for depth in DEPTHS:
                e, e0, q = (med("cpu-blk", m, "modern", True, depth) for m in CPU_MONITORS)
                if None in (e, e0, q):
                    continue
                bits.append(f"depth {depth}: Ember {e:.1f} us ({e / q:.2f}x QEMU's {q:.1f} us), "
                            f"{e0:.1f} us with --poll-us 0, so polling spends "
                            f"{e - e0:+.1f} us")
            if bits:
                out.append("Host CPU time per 4 KiB read (every thread of the monitor, the guest "
                           "halting while it waits): " + "; ".join(bits) + ".")
        if "irq" in self.b.rows:
            bits = []
            for face in FACES:
                f, e, q = (med("irq", m, face, True, 0) for m in MONITORS)
                if None in (f, e):
                    continue
                s = f"{face}: floor {f / 1000:.1f} us, Ember {e / 1000:.1f} us"
                if q is not None:
                    s += f", QEMU {q / 1000:.1f} us"
                bits.append(s)
            if bits:
                out.append("Interrupt round trips (kick, device, MSI-X, guest handler): "
                           + "; ".join(bits) + ".")
        if "startup" in self.b.rows:
            e, q = med("startup", "ember", "", False, 0), med("startup", "qemu", "", False, 0)
            er, qr = med("rss", "ember", "", False, 0), med("rss", "qemu", "", False, 0)
            if e is not None and q is not None:
                out.append(f"Start-up: Ember {e:.1f} ms and {er:.1f} MiB, QEMU microvm {q:.1f} ms "
                           f"and {qr:.1f} MiB (spawning /bin/true alone takes "
                           f"{self.b.spawn_ms:.1f} ms here).")
        if "linux" in self.b.rows:
            e, q = med("linux", "ember", "", False, 0), med("linux", "qemu", "", False, 0)
            ei, qi = med("linux-init", "ember", "", False, 0), med("linux-init", "qemu", "", False, 0)
            if e is not None and q is not None:
                out.append(f"Linux in the emulated-SVM L1 (bare machine, 2 vCPUs, 512 MiB): Ember "
                           f"ran {e:.2f} s from start to the guest's power-off, QEMU microvm "
                           f"{q:.2f} s ({e / q:.2f}x)"
                           + (f"; the guest's /init started at {ei:.2f} s and {qi:.2f} s of its "
                              "uptime" if ei is not None and qi is not None else "") + ".")
        if "linux-io" in self.b.rows:
            bits = []
            for name in iobench.NAMES:
                e, q = med("io-" + name, "ember", "", False, 0), med("io-" + name, "qemu", "", False, 0)
                if e is not None and q is not None:
                    bits.append(f"{name} {e:,.0f} against {q:,.0f} {iobench.UNITS[name]} "
                                f"({e / q:.2f}x)")
            for name in iobench.NET_NAMES:
                e, q = (med("io-" + name, "ember vhost", "", False, 0),
                        med("io-" + name, "qemu vhost", "", False, 0))
                if e is not None and q is not None:
                    bits.append(f"{name} with vhost-net {e:,.0f} against {q:,.0f} "
                                f"{iobench.UNITS[name]} ({e / q:.2f}x)")
            if bits:
                out.append("Linux I/O in the emulated-SVM L1 (fio and iperf3 in the guest, Ember "
                           "against QEMU q35 with virtio-blk-pci and virtio-net-pci; higher is "
                           "better): " + "; ".join(bits) + ".")
        return out

    # ---- documents ----

    def write_docs(self, docs: Path) -> list[Path]:
        """Rewrites docs/benchmarks.svg and docs/benchmarks.md, keeping the hand-written block."""
        docs.mkdir(exist_ok=True)
        (docs / "benchmarks.svg").write_text(Svg(self).render())
        md = docs / "benchmarks.md"
        hand = DEFAULT_HAND_WRITTEN
        if md.exists():
            old = md.read_text()
            if HAND_BEGIN in old and HAND_END in old:
                hand = old[old.index(HAND_BEGIN) + len(HAND_BEGIN):old.index(HAND_END)].strip("\n")
        md.write_text(self.markdown(hand))
        return [md, docs / "benchmarks.svg"]

    def markdown(self, hand: str) -> str:
        b, m, s = self.b, self.m, self.b.s
        la0, la1 = m["load_start"], m.get("load_end", m["load_start"])
        lines = [
            "# Benchmarks: Ember beside QEMU and the floor",
            "",
            "Generated by `tools/bench/run` (the tables, figures and the computed reading below are",
            "rewritten on every run; only the hand-written block is kept).",
            "",
            f"- **Command:** `{b.command}`",
            f"- **Date:** {b.date}",
            f"- **Machine:** {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}",
            f"- **KVM:** {m['kvm']}",
            f"- **QEMU:** {m['qemu']}",
            f"- **Load average** (1/5/15 min) at the start {la0[0]:.1f}/{la0[1]:.1f}/{la0[2]:.1f}, "
            f"at the end {la1[0]:.1f}/{la1[1]:.1f}/{la1[2]:.1f}; the run took {b.elapsed:.0f} s",
            f"- **Runs:** {s.runs} per figure (start-up {s.startup_runs}), interleaved; median, "
            f"min and max of the runs; {s.kick_count} kicks, {s.blk_count} requests per depth, "
            f"{s.irq_count} round trips per run",
            f"- **TSC:** {b.tsc_khz} kHz (KVM_GET_TSC_KHZ), used to convert every monitor's cycles",
            "",
            "![rows 1-3 as grouped bars](benchmarks.svg)",
            "",
            "## Figures",
            "",
            self.markdown_table(),
            "",
        ]
        if self.r.failures:
            lines += ["**Failed runs** (their figures are missing above):", ""]
            lines += [f"- `{f.splitlines()[0]}`" for f in self.r.failures] + [""]
        lines += ["## Targets", "", "| target | verdict | figures |", "|---|---|---|"]
        for t, v, d in self.targets():
            lines.append(f"| {t} | {v} | {d} |")
        if b.flakes:
            lines += ["", "Flakes of the emulated-SVM L1 (a stalled or crashed nested guest, tried "
                      "again as the boot tests do): " + ", ".join(
                          f"{k} {v}" for k, v in sorted(b.flakes.items())) + "."]
        if "linux" not in b.rows or not self.st("linux", "ember", "", False, 0):
            lines += ["", f"Row 5 (Linux in the emulated-SVM L1) is left out: {b.linux_note}."]
        lines += ["", "## The figures in sentences (computed)", ""]
        lines += [f"- {x}" for x in self.reading()]
        lines += ["", HAND_BEGIN, hand, HAND_END, "",
                  "## How each figure is measured", "", METHOD.format(
                      qemu_cache=b.qemu_cache, direct="yes" if b.direct else "no",
                      mem=GUEST_MEMORY, qboot=QBOOT), ""]
        return "\n".join(lines)


def row_order(row: str) -> int:
    order = ("kick", "switch", "blk", "cpu-blk", "irq", "startup", "rss", "cold-boot", "restore",
             "restore-in", "snapshot-create", "mem-file", "mem-disk", "linux", "linux-init",
             *("io-" + n for n in iobench.NAMES), "instr-kick", "instr-blk", "instr-irq")
    return order.index(row) if row in order else 99


def verdict(ok: bool, parts) -> str:
    if not parts:
        return "not measured"
    return "met" if ok else "**missed**"


METHOD = """\
All figures come from the freestanding test guest (`tests/guest/bench*.cpp`, run only when named:
`tests=bench-kick`, `bench-blk`, `bench-irq`, `bench-exit`), the same ELF under every monitor,
1 vCPU and {mem} of RAM. The guest times each loop with the TSC and prints
`BENCH <name> face=... count=N cycles=C ...`; the cycles are converted here with KVM's TSC
frequency, so no monitor's clock or calibration enters the figures. (The guest also prints its
own estimate, from CPUID 0x15/0x16/0x40000010 or kvmclock, falling back to the PIT.)

- **kick**: the guest drives a virtio-blk device to DRIVER_OK (MSI-X on, queue 0 with an empty
  ring) and writes queue 0's notify register N times in a 3-instruction loop (`out`/`mov`,
  `dec`, `jnz`): the legacy face's 16-bit port (PIO) or the modern face's notify address (MMIO).
  The device wakes for every kick and finds nothing. The floor is `kick-floor` (tools/bench):
  the same loop against a port or MMIO address that it serves with a bare ioeventfd (drained by
  one epoll thread, as a VMM must) or counts in its vCPU loop. `floor-nodrain` is a reference
  below the floor: the ioeventfd is never read while the guest runs, so a kick costs only KVM's
  in-kernel signalling and wakes no thread. The difference between the two is the price of
  waking the monitor's thread, which a busier consumer partly avoids (kicks that arrive while
  it is still running coalesce into one wake-up), so a monitor can come out below `floor`.
- **kick, switched**: the same loop in one ember session (`tools/bench/switch.py`): the guest
  runs it in rounds (`kick.rounds`, 300 ms of spinning after each), and after each round the
  bench reads `GET /ember/counters` on ember's API socket and switches the disk's kick path with
  `PATCH /ember/devices/blk0 {{"ioeventfd": ...}}`, so the rounds alternate ioeventfd on and off.
  A round counts only if the counters show every one of its kicks came the way it claims. The
  kick row compares two boots; here only the path differs.
- **blk**: 4 KiB reads (`VIRTIO_BLK_T_IN`), sequential over the first 64 MiB of a raw file on
  tmpfs, kept at queue depth 1 or 32, after a warm-up. Fixed 3-descriptor chains, no indirect
  descriptors, no EVENT_IDX; the device raises an MSI-X interrupt for every completion while the
  guest polls the used ring with interrupts disabled (so the guest's interrupt handler, emulated
  and identical under every monitor, is not in the figure; `blk.wait=hlt` would include it).
  Ember opens the file with O_DIRECT where the file system allows it (tmpfs O_DIRECT here:
  {direct}) and submits with Linux AIO; QEMU runs with `{qemu_cache}`.
- **blk CPU time**: the monitor's CPU time per 4 KiB read (user + system, every thread,
  from wait4's rusage), modern face, ioeventfd on, at depth 1 and 32: two boots per monitor
  that differ only in `blk.count` (N/5 and N), the difference in CPU time over the difference
  in requests, so boot and exit cancel out. The guest waits for each completion with `hlt`
  (`blk.wait=hlt`), so its vCPU thread spends CPU only on the guest's own work, the same under
  every monitor. `ember poll=0` is ember with `--poll-us 0`: the difference from `ember` is
  what adaptive polling spends.
- **irq**: per round trip the guest publishes one buffer, kicks (ioeventfd), halts until the
  interrupt and checks the used ring. Ember: a 1-byte virtio-rng read, the smallest request that
  completes with an MSI-X interrupt. QEMU: the same with virtio-rng-pci. Floor: `kick-floor
  --ioeventfd --irq` answers every kick with an irqfd write on a GSI routed as an MSI to the
  guest's vector.
- **start-up**: wall time from just before the monitor process is spawned until it is reaped,
  guest `tests=bench-exit` (it writes the debug-exit port as soon as it has read its command
  line), and the process's maximum RSS, from a second run of the same command under GNU time
  (`%M`). QEMU: `-M microvm` (qboot firmware, PVH entry), `-nodefaults`, serial on stdio.
- **QEMU rows 1-3** run `-M q35,sata=off,smbus=off` with qboot (`-bios {qboot}`)
  instead of SeaBIOS, which takes about 8 s here because this host emulates guest kernel-mode
  code; microvm has no port I/O to PCI, so q35 is what offers both faces.
  `-device virtio-blk-pci,ioeventfd=on|off`, `-device virtio-rng-pci`,
  `-cpu host,-arch-capabilities`, `-smp 1`.
- **linux** (`--linux`, row 5): `tools/linux-boot --l1 --no-devices --cpus 2 --memory 512M
  --cmdline i8042.noprobe` with `--monitor ember` and `--monitor qemu`, interleaved: Debian's
  cloud kernel (PVH vmlinux) and the boot test's initramfs in the emulated-SVM L1, once under
  ember and once under `qemu-system-x86_64 -M microvm,rtc=on -accel kvm -cpu host` (qboot, PVH
  entry, serial on stdio), which the harness copies into the L1 with its libraries. rtc=on:
  without a CMOS clock the guest's rtc_cmos probe spent 17 s there; i8042.noprobe (both
  monitors): microvm has no i8042, and probing for one stalled or reset the guest. The figures are the L1's
  measure of the monitor's run, from its start to its exit after the guest's power-off, and the
  guest kernel's uptime when its /init started.
- **linux io** (`--linux`, row 6): `tools/linux-boot --io-bench --monitor ember|qemu`,
  interleaved: Debian's fio and iperf3 with their libraries in the same guest (2 vCPUs, 1 GiB,
  the same kernel, initramfs and command line) in the emulated-SVM L1, under ember and under
  `qemu-system-x86_64 -M q35 -accel kvm -cpu host` (qboot, PVH entry) with `virtio-blk-pci`
  and `virtio-net-pci` (ioeventfd on, the tap without vhost). The disk is a 256 MiB file of
  zeros in the L1's RAM (tmpfs: both monitors open it buffered), so the L1's own emulated disk
  is not in the figure. fio in the guest: O_DIRECT, libaio, one job at a time, 5 s after 1 s of
  ramp: 4 KiB random reads at depth 1 and 32 (IOPS), 1 MiB sequential reads and writes at depth
  8 (MB/s). iperf3: 5 s each way against a server on the L1's end of the tap (Mbit/s as the
  receiver counted; tx is guest to L1). Under nested emulation every exit costs tens of
  microseconds, so the figures are far below bare metal; what they compare is the monitors.
- Boots are interleaved (run 1 of every configuration, then run 2, ...), so load that changes
  during the benchmark spreads over all monitors. Timings are never asserted: CI runs
  `tools/bench/run --quick --no-write` (ctest label `bench`) only to prove the benchmark works.
"""

DEFAULT_HAND_WRITTEN = """\
## Reading the figures

(Hand-written analysis goes here; tools/bench/run keeps this block.)"""

