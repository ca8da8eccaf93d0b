#!/usr/bin/env bash
# One fold trained on one GPU, measured end to end, within about 10 minutes:
#
#   bash benchmarks/gpu_speedrun.sh DATA OUT
#
# DATA: the training tiles packed by `python -m salt.data.pack pack DATA_DIR DATA` (about
# 25 MB: it travels where the competition data cannot). OUT receives at most 8 files:
#   figures.md        training throughput (fp32 eager against the speedrun settings), the GPU's
#                     busy fraction while training, seconds per epoch, training time, best
#                     val/score, inference throughput with flip TTA
#   speedrun.log      everything the steps printed
#   run.tar           the run's config.yaml, metrics.csv, training_curves.png, manifest
#   weights.fp16.NN   the best weights in half precision, parts of at most 16 MiB
# Back on a machine with the data, rebuild the run and predict the test tiles:
#   python -m salt.training.transfer rebuild OUT outputs/speedrun/resnet34/fold_0 --data-dir ../shared/tgs-salt
#   python predict.py 'runs=[outputs/speedrun/resnet34/fold_0]' precision=bf16
#
# SMOKE=1 runs every step on a CPU with tiny settings (a test does this). PYTHON picks the
# interpreter (default python3); EXTRA adds train.py overrides. Two guards keep the whole
# script inside a rented machine's time: BENCH_SECONDS (default 240) stops the throughput
# benchmark (training still runs), TRAIN_SECONDS (default 360) stops training through
# Lightning's max_time (checkpoints, metrics and the export are then still written).
set -euo pipefail
if [[ $# -ne 2 ]]; then
    echo "usage: bash benchmarks/gpu_speedrun.sh DATA.npz OUT" >&2
    exit 2
fi
DATA=$1
OUT=$2
PY=${PYTHON:-python3}
SMOKE=${SMOKE:-0}
BENCH_SECONDS=${BENCH_SECONDS:-240}
TRAIN_SECONDS=${TRAIN_SECONDS:-360}
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}   # the benchmark imports salt from this checkout
if [[ ! -f $DATA ]]; then
    echo "error: $DATA: packed training tiles not found (python -m salt.data.pack pack DATA_DIR $DATA)" >&2
    exit 1
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"; [[ -n ${sampler:-} ]] && kill "$sampler" 2>/dev/null || true' EXIT
exec > >(tee "$OUT/speedrun.log") 2>&1
export PYTHONUNBUFFERED=1 WANDB_MODE=offline NO_ALBUMENTATIONS_UPDATE=1  # offline: no version check

if [[ $SMOKE == 1 ]]; then
    device=cpu
    train_args=(encoder=tiny trainer=cpu trainer.compile=false trainer.max_epochs=2 data.batch_size=8
                "model.decoder_channels=[16,16,16,8,8]" model.hypercolumn_channels=8)
    bench_args=(--device cpu --parts c i --no-recipe --batch-size 4 --warmup 1 --iterations 1 --inference-batch-size 4)
else
    device=cuda
    train_args=()
    bench_args=(--device cuda --parts a b c i --batch-size 64 --warmup 5 --iterations 30 --compile
                --tiles 2800 --data-batch-size 256 --device-epochs 5 --inference-batch-size 512 --repeats 1)
fi
read -r -a extra <<< "${EXTRA:-}"

echo "# speedrun $(date -u +%FT%TZ): $($PY -c 'import platform, torch, timm, pytorch_lightning as pl; print("torch", torch.__version__, "timm", timm.__version__, "lightning", pl.__version__, "python", platform.python_version(), "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")')"
$PY -m salt.data.pack unpack "$DATA" "$work/data"

echo "## throughput"
timeout "$BENCH_SECONDS" $PY benchmarks/train_throughput.py --experiment speedrun "${bench_args[@]}" | tee "$work/throughput.md" \
    || echo "(throughput benchmark stopped after ${BENCH_SECONDS} s or failed; training goes on)" | tee -a "$work/throughput.md"

echo "## training fold 0"
if [[ $device == cuda ]] && command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 500 > "$work/busy.txt" &
    sampler=$!
fi
start=$(date +%s.%N)
$PY train.py experiment=speedrun fold=0 data.dir="$work/data" paths.output_dir="$work/outputs" \
    paths.cache_dir="$work/cache" "+trainer.max_time=$(printf '00:%02d:%02d:%02d' $((TRAIN_SECONDS / 3600)) $((TRAIN_SECONDS / 60 % 60)) $((TRAIN_SECONDS % 60)))" "${train_args[@]}" "${extra[@]}"
seconds=$($PY -c "import time; print(f'{time.time() - $start:.1f}')")
if [[ -n ${sampler:-} ]]; then kill "$sampler"; wait "$sampler" 2>/dev/null || true; sampler=; fi
run=$(dirname "$(find "$work/outputs/speedrun" -name config.yaml -not -path '*/.hydra/*' | head -n 1)")

$PY -m salt.training.transfer export "$run" "$OUT"
$PY - "$run" "$seconds" "$work" > "$work/run.md" <<'EOF'
import sys
from pathlib import Path

from salt.training.callbacks import read_metrics_csv

run, seconds, work = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
series = read_metrics_csv(run / "metrics" / "metrics.csv")
scores = series["val/score"]
best_epoch, best = max(scores, key=lambda item: item[1])
epochs = len(scores)
busy = work / "busy.txt"
samples = [float(line) for line in busy.read_text().split()] if busy.is_file() else []
print("## fold 0 with experiment=speedrun\n")
print("| figure | value |\n|---|---:|")
print(f"| train.py wall time (start-up, compile and validation included) | {seconds:.1f} s |")
print(f"| epochs | {epochs} |")
print(f"| seconds per epoch (wall time / epochs) | {seconds / epochs:.2f} |")
print(f"| best val/score | {best:.4f} (epoch {best_epoch}) |")
print(f"| last val/score | {scores[-1][1]:.4f} |")
if samples:
    print(f"| GPU busy while train.py ran (nvidia-smi, {len(samples)} samples) | {sum(samples) / len(samples):.0f} % |")
EOF
cat "$work/throughput.md" "$work/run.md" > "$OUT/figures.md"
cat "$work/run.md"
echo "wrote $(ls "$OUT" | tr '\n' ' ')"
