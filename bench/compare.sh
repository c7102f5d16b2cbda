#!/bin/sh
# Runs user/vmbench on zxkernel and bench/linux/vmbench.c on Debian's Linux kernel in the same
# QEMU configuration (q35, 128 MiB, TCG, qemu64,+smep,+smap: boot/src/qemu.rs), alternately for
# ROUNDS rounds (default 3), and prints the table of medians with ratios ours/Linux; writes
# the summary and an SVG plot. Not part of `cargo test`.
#
#   bench/compare.sh                 # ROUNDS=3, vmbench args "rounds=5"
#   ROUNDS=5 ARGS="rounds=7 m=100,1000" bench/compare.sh
#   PROFILE=dev bench/compare.sh     # the kernel `cargo run` boots (debug assertions and
#                                    # overflow checks on); default: `--release` (both off)
#   QEMU_ARGS=-mem-prealloc bench/compare.sh   # extra QEMU arguments, for both sides
#
# Output in $BENCH_DIR (default target/bench): ours-R.log, linux-R.log, summary.txt,
# table.md, ratios.svg. The Linux kernel comes from apt (`apt-get download` of the package
# linux-image-amd64 depends on, then `dpkg -x`); gcc is installed with apt-get when missing.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
ARGS=${ARGS:-rounds=5}
DIR=${BENCH_DIR:-$ROOT/target/bench}
TIMEOUT=${TIMEOUT:-900}
PROFILE=${PROFILE:-release}
QEMU_ARGS=${QEMU_ARGS:-}
case "$PROFILE" in
  release) CARGO_PROFILE=--release ;;
  dev) CARGO_PROFILE= ;;
  *) echo "compare.sh: PROFILE is release or dev"; exit 2 ;;
esac
mkdir -p "$DIR"

apt_install() {
  if [ "$(id -u)" = 0 ]; then apt-get install -y "$@"; else sudo apt-get install -y "$@"; fi
}
command -v gcc >/dev/null || apt_install gcc libc6-dev
command -v qemu-system-x86_64 >/dev/null || apt_install qemu-system-x86

if [ ! -f "$DIR/vmlinuz" ]; then
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || { echo "compare.sh: cannot resolve linux-image-amd64 (apt-get update?)"; exit 1; }
  echo "compare.sh: fetching $pkg"
  (cd "$DIR" && rm -rf deb && mkdir deb && cd deb && apt-get download "$pkg" && dpkg -x ./*.deb root)
  cp "$DIR"/deb/root/boot/vmlinuz-* "$DIR/vmlinuz"
  echo "$pkg" > "$DIR/linux-package.txt"
  rm -rf "$DIR/deb"
fi
gcc -O2 -static -Wall -o "$DIR/vmbench-linux" bench/linux/vmbench.c
python3 bench/mkcpio.py "$DIR/vmbench-linux" "$DIR/initrd.cpio"
# shellcheck disable=SC2086
cargo build -q $CARGO_PROFILE -p boot

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "load: $(cat /proc/loadavg)"
  echo "host: $(nproc) cpus, $(qemu-system-x86_64 --version | head -1)"
  echo "linux: $(cat "$DIR/linux-package.txt")"
  echo "zxkernel: $(git rev-parse --short HEAD)"
  echo "args: $ARGS; rounds: $ROUNDS; kernel profile: $PROFILE; extra QEMU args: ${QEMU_ARGS:-none}"
} > "$DIR/header.txt"
cat "$DIR/header.txt"

r=1
while [ "$r" -le "$ROUNDS" ]; do
  echo "compare.sh: round $r/$ROUNDS: zxkernel"
  # shellcheck disable=SC2086
  cargo run -q $CARGO_PROFILE -- --timeout "$TIMEOUT" vmbench $ARGS -- $QEMU_ARGS > "$DIR/ours-$r.log" 2>&1 || echo "compare.sh: zxkernel run failed (see ours-$r.log)"
  echo "compare.sh: round $r/$ROUNDS: Linux"
  # shellcheck disable=SC2086
  timeout "$TIMEOUT" qemu-system-x86_64 -machine q35 -m 128M -accel tcg -cpu qemu64,+smep,+smap \
    -nic none -display none -no-reboot -serial stdio $QEMU_ARGS \
    -kernel "$DIR/vmlinuz" -initrd "$DIR/initrd.cpio" \
    -append "console=ttyS0 quiet panic=-1 $ARGS" > "$DIR/linux-$r.log" 2>&1 </dev/null || true
  r=$((r + 1))
done

python3 - "$DIR" "$ROUNDS" <<'PY'
import re, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
pat = re.compile(r"BENCH name=(\S+) ns=(-?\d+) min=(-?\d+) max=(-?\d+)")
def load(side):
    res, order = {}, []
    for r in range(1, rounds + 1):
        for line in open(f"{d}/{side}-{r}.log", errors="replace"):
            m = pat.search(line)
            if m:
                n = m.group(1)
                if n not in res:
                    res[n] = []
                    order.append(n)
                res[n].append(tuple(int(x) for x in m.groups()[1:]))
    return res, order
ours, order = load("ours")
linux, lorder = load("linux")
for n in lorder:
    if n not in order:
        order.append(n)
def agg(v):
    return (int(statistics.median(x[0] for x in v)), min(x[1] for x in v), max(x[2] for x in v))
def f(n):
    return f"{n:,}".replace(",", " ")
rows, summ = [], []
rows.append("| workload | zxkernel ns, median (min-max) | Linux ns, median (min-max) | ours/Linux (min-max) |")
rows.append("|---|---:|---:|---:|")
for n in order:
    o = agg(ours[n]) if n in ours else None
    l = agg(linux[n]) if n in linux else None
    os_ = f"{f(o[0])} ({f(o[1])}-{f(o[2])})" if o else "n/a"
    ls = f"{f(l[0])} ({f(l[1])}-{f(l[2])})" if l else "n/a"
    if o and l and l[0] > 0 and l[1] > 0:
        rs = f"**{o[0]/l[0]:.2f}** ({o[1]/l[2]:.2f}-{o[2]/l[1]:.2f})"
        summ.append(f"{n} {o[0]} {o[1]} {o[2]} {l[0]} {l[1]} {l[2]}")
    else:
        rs = "n/a"
    rows.append(f"| {n} | {os_} | {ls} | {rs} |")
for side in ("ours", "linux"):
    for r in range(1, rounds + 1):
        for line in open(f"{d}/{side}-{r}.log", errors="replace"):
            if "BENCH_STOP" in line:
                rows.append(f"\n{side} round {r}: {line.strip()}")
                break
open(f"{d}/table.md", "w").write("\n".join(rows) + "\n")
open(f"{d}/summary.txt", "w").write("\n".join(summ) + "\n")
print("\n".join(rows))
PY
python3 bench/plot.py "$DIR/summary.txt" "$DIR/ratios.svg"
echo "compare.sh: wrote $DIR/table.md, $DIR/summary.txt, $DIR/ratios.svg"
