#!/usr/bin/env bash
# A fresh machine, run by hand (20-40 minutes; pytest does not collect it): clone this checkout's
# committed HEAD into an empty temporary folder and run the README's two commands there, `make demo`
# then `make test`, as a user on a new machine would. Each runs under `env -i` with only what a user
# has: a fresh HOME, PATH=/usr/local/bin:/usr/bin:/bin, LANG and GLOSS_DATA_DIR (the data they
# downloaded; the clone is not beside ../shared/data, so it is passed explicitly).
# PIP_CONFIG_FILE=/dev/null makes pip read no config file: no find-links, no local wheels, no
# constraint file, only the package registry (PyPI). The registry's default torch (a CUDA build of
# several GB) is downloaded as a user would, so its download is part of the measured time.
# The python3 on that PATH must be >= 3.11 (Debian 12's /usr/bin/python3 is 3.11.2); where it is
# older, set PYTHON=<a 3.11 interpreter> and the script passes it to make.
#
# Usage: tests/fresh_machine.sh [DATA_DIR]
#   DATA_DIR defaults to $GLOSS_DATA_DIR, else ../shared/data beside the checkout.
#   KEEP=1 keeps the temporary folder. Writes bench/results/fresh_machine.json in this checkout.
# Exits non-zero when either command fails.
set -euo pipefail

checkout=$(cd "$(dirname "$0")/.." && pwd)
data=$(cd "${1:-${GLOSS_DATA_DIR:-$checkout/../shared/data}}" && pwd)
commit=$(git -C "$checkout" rev-parse HEAD)
min_path=/usr/local/bin:/usr/bin:/bin
python=${PYTHON:-python3}

tmp=$(mktemp -d)
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

user_env=(env -i HOME="$tmp/home" PATH="$min_path" LANG="${LANG:-C.UTF-8}" GLOSS_DATA_DIR="$data"
    PIP_CONFIG_FILE=/dev/null)

if ! "${user_env[@]}" "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "$python on PATH=$min_path is not Python >= 3.11; set PYTHON=<a 3.11 interpreter>" >&2
    exit 2
fi

mkdir "$tmp/home"
git clone --quiet --no-checkout "$checkout" "$tmp/gloss-study"
git -C "$tmp/gloss-study" checkout --quiet --detach "$commit"
echo "commit $commit cloned into $tmp/gloss-study; data $data"

make_args=()
if [ -n "${PYTHON:-}" ]; then make_args+=("PYTHON=$PYTHON"); fi

rows=()
failed=0
for target in demo test; do
    echo "=== make $target"
    start=$EPOCHREALTIME
    status=0
    (cd "$tmp/gloss-study" && "${user_env[@]}" make "${make_args[@]}" "$target") || status=$?
    wall=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    load=$(cut -d' ' -f1-3 /proc/loadavg)  # the machine may be shared: how busy it was
    echo "=== make $target: ${wall} s, exit status $status, load averages $load"
    rows+=("make $target" "$wall" "$status" "$load")
    [ "$status" = 0 ] || failed=1
done

torch_versions=$("$tmp/gloss-study/.venv/bin/python" -c \
    'import importlib.metadata as m, torch; print(torch.__version__, m.version("torch"))' 2>/dev/null) ||
    torch_versions="none none"

"${user_env[@]}" "$python" - "$checkout/bench/results/fresh_machine.json" "$commit" "$data" \
    $torch_versions "$python" "${rows[@]}" <<'EOF'
"""Write the results file: each command's wall time and exit status, torch, the machine."""
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

out, commit, data, torch_version, torch_dist, python, *cells = sys.argv[1:]
cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
meminfo = Path("/proc/meminfo").read_text().splitlines()
memory_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
os_release = dict(
    line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
)
python_version = subprocess.run([python, "--version"], capture_output=True, text=True).stdout.split()[-1]
payload = {
    "machine": {
        "cpu": next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), ""),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "os": os_release.get("PRETTY_NAME", "").strip('"'),
        "python": python_version,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    },
    "commit": commit,
    "environment": "env -i: fresh HOME, PATH=/usr/local/bin:/usr/bin:/bin, LANG, GLOSS_DATA_DIR, "
    "PIP_CONFIG_FILE=/dev/null (pip sees only the package registry)",
    "data_dir": os.path.relpath(data, os.path.dirname(os.path.dirname(os.path.dirname(out)))),
    "torch": {"__version__": torch_version, "distribution": torch_dist} if torch_dist != "none" else None,
    "rows": [
        {
            "command": cells[i],
            "seconds": round(float(cells[i + 1]), 1),
            "exit_status": int(cells[i + 2]),
            "load_averages_1_5_15_min_at_end": [float(x) for x in cells[i + 3].split()],
        }
        for i in range(0, len(cells), 4)
    ],
}
Path(out).parent.mkdir(parents=True, exist_ok=True)
Path(out).write_text(json.dumps(payload, indent=2) + "\n")
print(json.dumps(payload["rows"]))
print(f"wrote {out}")
EOF

exit "$failed"
