#!/usr/bin/env bash
# The strong model's measurements (clean bases, then the paper's setting on four cases) in ONE
# prepared call of a lent GPU: each stage under its own time limit, so the call ends with its files
# written, and resumable while the machine stays warm (its work folder is kept).
#
#   here, once:  mkdir -p .device && cp ../shared/data/cifar10-jpg.tar.gz .device/     (.device/ is git-ignored)
#   the call:    device run: command "bash bench/device_strong.sh", carry [".device"], timeout_s 600
#   elsewhere:   OUT=bench/out/device bash bench/device_strong.sh     (a CPU: hours, not minutes)
#
# What comes back under $OUT (the device returns 8 files at most):
#   train_speed.json    fastnet trained from scratch for 32 epochs (the shipped base is its recipe at 16:
#                       0.899, measured), and the wider 96/288/288 net (2.6M parameters against 2.0M) at 24
#   base-fastnet.tar    the 32-epoch base if it beats the shipped one (0.899): to ship in assets/bases
#   results*.json       the sweep's saved table per variant (the paper's attack or ours; defenses at 1% or
#                       at 0.5): binary:170 binary:7 color:1 binary:16, mesa:0.9 ensemble pixel-sgd finetune,
#                       each with its census
#   log.txt             everything printed
set -uo pipefail
OUT=${OUT:-bench/out/device}
WORK=${DEVICE_WORK:-/tmp/mesa-device}
BUDGET=${DEVICE_BUDGET_S:-560}  # seconds this script may run in all
START=$SECONDS
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1 MESA_CACHE=$WORK/cache MESA_RUNS=$WORK/runs MESA_READY_RUNS=0
left() { echo $((BUDGET - (SECONDS - START))); }

echo "== machine"; nvidia-smi -L 2>/dev/null; python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
DATA=$WORK/cifar10-jpg
if [ ! -d "$DATA/train" ]; then
  mkdir -p "$DATA" && tar xzf "${CIFAR10_TARBALL:-.device/cifar10-jpg.tar.gz}" -C "$DATA" || { echo "no CIFAR-10 tarball"; exit 2; }
fi

echo "== 1. clean fastnet bases ($(left) s left)"
train() {  # name, then train_speed.py's arguments; skipped when its base or record is there
  [ -e "$WORK/done-$1" ] && return
  timeout $(( $(left) > 150 ? 150 : $(left) )) python3 bench/train_speed.py --data "folder:$DATA" \
    --record "$OUT/train_speed.json" "${@:2}" && touch "$WORK/done-$1"
}
train e32 --epochs 32 --ship "$WORK/bases-e32"
train wide24 --epochs 24 --widths 96 288 288
BASE=$(python3 - "$WORK" <<'EOF'
import json, sys
from pathlib import Path
best = max(((json.loads((p / "metrics.json").read_text())["clean_acc"], p)
            for p in Path(sys.argv[1]).glob("bases-e*/cifar10-fastnet") if (p / "metrics.json").exists()), default=None)
print(best[1] if best and best[0] > 0.8987 else "")
EOF
)
if [ -n "$BASE" ]; then
  tar cf "$OUT/base-fastnet.tar" -C "$(dirname "$BASE")" cifar10-fastnet && echo "new base: $BASE"
  BASE_ARG=(--base "$BASE")
else
  BASE_ARG=(); echo "the shipped base stays"
fi

echo "== 2. the strong-model sweep ($(left) s left)"
SWEEP=(python3 -m mesa sweep --data "folder:$DATA" --model fastnet "${BASE_ARG[@]}"
       --triggers binary:170 binary:7 color:1 binary:16 --targets 0 0 3 0
       --defenses mesa:0.9 ensemble pixel-sgd finetune --parallel 4 --quiet --out "$WORK/sweep")
VARIANTS=("paper-1pct:--attack-recipe paper --defense-poison-ratio 0.01" "ours-default:--attack-recipe ours"
          "paper-default:--attack-recipe paper" "ours-1pct:--attack-recipe ours --defense-poison-ratio 0.01")
for v in "${VARIANTS[@]}"; do
  [ "$(left)" -lt 20 ] && break
  echo "-- ${v%%:*} ($(left) s left)"
  # shellcheck disable=SC2086
  timeout -k 10 "$(left)" "${SWEEP[@]}" ${v#*:}
  cp "$WORK"/sweep/results*.json "$OUT"/ 2>/dev/null
done
for v in "${VARIANTS[@]}"; do
  # shellcheck disable=SC2086
  "${SWEEP[@]}" ${v#*:} --table 2>/dev/null
done
echo "== done in $((SECONDS - START)) s"
