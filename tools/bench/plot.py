"""The plot: rows 1-3, the CPU-time row and the Linux I/O row (relative to QEMU) as grouped bars
with min-max whiskers, SVG written by hand."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness import iobench

from .config import CPU_MONITORS, DEPTHS, FACES, KICK_OF, MONITORS, on

if TYPE_CHECKING:
    from .report import Report


class Svg:
    COLORS = {"floor": "#8c8c8c", "ember": "#e8743b", "ember poll=0": "#f2b48f", "qemu": "#3b7de8"}

    def __init__(self, report: Report):
        self.rep = report

    def panels(self) -> list[tuple[str, list[tuple[str, list[tuple[str, dict]]]], float, str]]:
        """(title, groups of bars, the divisor that turns a figure into the axis' unit, the
        unit)."""
        st = self.rep.st
        panels = []
        if "kick" in self.rep.b.rows:
            groups = []
            for face in FACES:
                for ioev in (True, False):
                    bars = [(m, st("kick", m, face, ioev, 0)) for m in MONITORS]
                    groups.append((f"{face} {KICK_OF[face]} ioeventfd {on(ioev)}", bars))
            panels.append(("Kick cost (us per kick; lower is better)", groups, 1000, "us"))
        if "blk" in self.rep.b.rows:
            groups = []
            for face in FACES:
                for ioev in (True, False):
                    for depth in DEPTHS:
                        bars = [(m, st("blk", m, face, ioev, depth)) for m in ("ember", "qemu")]
                        groups.append((f"{face} {on(ioev)} QD{depth}", bars))
            panels.append(("4 KiB read (us per request; lower is better)", groups, 1000, "us"))
        if "cpu" in self.rep.b.rows:
            groups = []
            for depth in DEPTHS:
                bars = [(m, st("cpu-blk", m, "modern", True, depth)) for m in CPU_MONITORS]
                groups.append((f"modern on QD{depth}", bars))
            panels.append(("Host CPU time per 4 KiB read (us, every thread; lower is better)",
                           groups, 1, "us"))
        if "irq" in self.rep.b.rows:
            groups = []
            for face in FACES:
                bars = [(m, st("irq", m, face, True, 0)) for m in MONITORS]
                groups.append((f"{face} {KICK_OF[face]}", bars))
            panels.append(("Kick -> MSI-X -> handler round trip (us; lower is better)", groups,
                           1000, "us"))
        if "linux-io" in self.rep.b.rows:
            groups = []
            for name in iobench.NAMES:
                q = st("io-" + name, "qemu", "", False, 0)
                if not q:
                    continue
                rel = lambda s: s and {k: s[k] / q["median"] for k in ("median", "min", "max")}
                groups.append((name, [(m, rel(st("io-" + name, m, "", False, 0)))
                                      for m in ("ember", "qemu")]))
            panels.append(("Linux I/O in the L1: fio and iperf3, relative to QEMU q35's median "
                           "(higher is better)", groups, 1, "x QEMU"))
        return panels

    def render(self) -> str:
        width, panel_h, top = 960, 260, 40
        panels = self.panels()
        height = top + len(panels) * (panel_h + 40) + 20
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
               f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
               f'<rect width="{width}" height="{height}" fill="white"/>',
               f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">'
               f'{esc(self.rep.title())}</text>']
        lx = width - 340
        for i, m in enumerate(("floor", "ember", "ember poll=0", "qemu")):
            out.append(f'<rect x="{lx + i * 80}" y="30" width="12" height="12" fill="{self.COLORS[m]}"/>'
                       f'<text x="{lx + i * 80 + 16}" y="40">{"kick-floor" if m == "floor" else m}</text>')
        y0 = top + 20
        for title, groups, scale, unit in panels:
            out += self.panel(title, groups, scale, unit, 70, y0, width - 90, panel_h)
            y0 += panel_h + 40
        out.append("</svg>")
        return "\n".join(out) + "\n"

    def panel(self, title, groups, scale, unit, x, y, w, h) -> list[str]:
        out = [f'<text x="{x}" y="{y}" font-size="13" font-weight="bold">{esc(title)}</text>']
        plot_top, plot_h = y + 12, h - 60
        vmax = max([s["max"] / scale for _, bars in groups for _, s in bars if s] + [0.001])
        vmax = nice_ceiling(vmax)
        for i in range(6):
            v = vmax * i / 5
            yy = plot_top + plot_h - plot_h * i / 5
            out.append(f'<line x1="{x}" x2="{x + w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>'
                       f'<text x="{x - 6}" y="{yy + 4:.1f}" text-anchor="end">{v:g}</text>')
        gw = w / max(1, len(groups))
        for gi, (label, bars) in enumerate(groups):
            bw = min(28, (gw - 16) / max(1, len(bars)))
            gx = x + gi * gw + (gw - bw * len(bars)) / 2
            for bi, (mon, s) in enumerate(bars):
                bx = gx + bi * bw
                if not s:
                    continue
                med, lo, hi = s["median"] / scale, s["min"] / scale, s["max"] / scale
                bh = plot_h * med / vmax
                out.append(f'<rect x="{bx:.1f}" y="{plot_top + plot_h - bh:.1f}" width="{bw - 2:.1f}" '
                           f'height="{bh:.1f}" fill="{self.COLORS[mon]}"><title>{mon}: median '
                           f'{med:.2f} {unit} (min {lo:.2f}, max {hi:.2f})</title></rect>')
                cx = bx + (bw - 2) / 2
                y_lo, y_hi = plot_top + plot_h * (1 - lo / vmax), plot_top + plot_h * (1 - hi / vmax)
                out.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y_lo:.1f}" y2="{y_hi:.1f}" '
                           f'stroke="black"/>')
            out.append(f'<text x="{x + gi * gw + gw / 2:.1f}" y="{plot_top + plot_h + 16}" '
                       f'text-anchor="middle" font-size="11">{esc(label)}</text>')
        out.append(f'<line x1="{x}" x2="{x + w}" y1="{plot_top + plot_h}" y2="{plot_top + plot_h}" '
                   f'stroke="black"/>')
        return out


def nice_ceiling(v: float) -> float:
    if v <= 0:
        return 1
    exp = 10 ** int(f"{v:e}".split("e")[1])
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

