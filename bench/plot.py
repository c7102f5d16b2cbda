#!/usr/bin/env python3
"""Writes an SVG bar chart of ratios ours/Linux (median, with min-max whiskers) from the
compare.sh summary file (lines: name ours_med ours_min ours_max linux_med linux_min linux_max).
Usage: plot.py SUMMARY OUT.svg. No dependencies beyond Python's standard library."""
import math, sys

rows = []
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) != 7:
        continue
    name, om, omin, omax, lm, lmin, lmax = p[0], *map(float, p[1:])
    if lm <= 0 or lmin <= 0:
        continue
    rows.append((name, om / lm, omin / lmax, omax / lmin))

W, rowh, left, right = 900, 22, 300, 40
H = 60 + rowh * len(rows)
lo, hi = 0.01, 100.0
def x(r):
    r = min(max(r, lo), hi)
    return left + (W - left - right) * (math.log10(r) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
s = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (W, H),
     '<rect width="100%" height="100%" fill="white"/>',
     '<text x="10" y="20" font-size="14">zxkernel / Linux time ratio per workload (log scale; &lt;1 = zxkernel faster; whiskers: min-max)</text>']
for t in (0.01, 0.1, 0.7, 1, 10, 100):
    s.append('<line x1="%.1f" y1="30" x2="%.1f" y2="%d" stroke="%s"/>' % (x(t), x(t), H - 20, "#c00" if t == 0.7 else "#ccc"))
    s.append('<text x="%.1f" y="%d" text-anchor="middle">%g</text>' % (x(t), H - 5, t))
for i, (name, r, rmin, rmax) in enumerate(rows):
    y = 40 + i * rowh
    s.append('<text x="%d" y="%d" text-anchor="end">%s</text>' % (left - 6, y + 13, name))
    color = "#3a7" if r <= 0.7 else ("#e93" if r <= 1 else "#d33")
    s.append('<rect x="%.1f" y="%d" width="%.1f" height="14" fill="%s"/>' % (x(lo), y + 2, x(r) - x(lo), color))
    s.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>' % (x(rmin), y + 9, x(rmax), y + 9))
    s.append('<text x="%.1f" y="%d">%.2f</text>' % (x(max(r, rmax)) + 4, y + 13, r))
s.append("</svg>")
open(sys.argv[2], "w").write("\n".join(s) + "\n")
