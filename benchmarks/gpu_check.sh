#!/usr/bin/env bash
# What the README's GPU numbers come from, in one call on one GPU (about 10 minutes on an H100 or H200):
#   1. train_throughput.py, 100M model in bf16: pre-training blocks and packed lecture rows, classit against a
#      plain loop, tokens/s and MFU; then the same compiled (and packed rows with flex attention, compiled);
#   2. `classit fit` of configs/pretrain_100m.yaml on the 3M-word sample for FIT_STEPS optimizer steps (global
#      batch 128 x 512, micro-batch 32): TensorBoard's tokens/s and MFU of the real run;
#   3. `classit evaluate` of that model on the fast BLiMP and EWoK sets (pairs/s);
#   4. `classit finetune` of it on RTE, MRPC and WSC, one seed, the official settings (wall time per task);
#   5. bench_scoring.py and aoa_speed.py, 100M model: the zero-shot suite and the AoA surprisals of one
#      checkpoint (8,005 contexts), classit against the official one-text / one-context loops.
# Needs CLASSIT_DATA_DIR with babylm-corpus/{train_3M,dev}, babylm-eval-fast and babylm-eval/glue_filtered.
# Small results (logs, JSON lines, TensorBoard events) go to OUT (first argument, default gpu_check); models
# and caches to WORK (default /tmp/classit_gpu_check). Each part has its own time limit; a part that fails or
# runs out of time says so and the next one runs. PARTS picks some: the model of "fit" is the one evaluated.
#
#   bash benchmarks/gpu_check.sh OUT
#   PARTS="evaluate finetune" bash benchmarks/gpu_check.sh OUT     # later, with the same WORK
set -u
OUT=${1:-gpu_check}
WORK=${WORK:-/tmp/classit_gpu_check}
FIT_STEPS=${FIT_STEPS:-300}
PARTS=${PARTS:-bench bench_compiled bench_flex fit evaluate finetune bench_scoring aoa_speed}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" CLASSIT_CACHE_DIR="${CLASSIT_CACHE_DIR:-$WORK/cache}"

has() { [[ " $PARTS " == *" $1 "* ]]; }
part() {  # part NAME SECONDS COMMAND...: run it with a time limit, its output in OUT/NAME.log
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  has "$name" || return 0
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  echo "== $name: exit $? after $((SECONDS - start)) s"
  tail -n 4 "$OUT/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv,noheader 2>/dev/null
BENCH=(benchmarks/train_throughput.py --sizes "${SIZE:-100m}" --precision "${PRECISION:-bf16-mixed}" --steps 20
       --warmup 5 --rounds 1)
part bench "${PART_SECONDS:-150}" "$PYTHON" "${BENCH[@]}"
part bench_compiled "${PART_SECONDS:-240}" "$PYTHON" "${BENCH[@]}" --compile
part bench_flex "${PART_SECONDS:-180}" "$PYTHON" "${BENCH[@]}" --compile --attn flex_attention --cases packed

has fit && rm -rf "$WORK/logs/fit"
part fit "${PART_SECONDS:-300}" "$PYTHON" -m classit.cli fit --config "${CONFIG:-configs/pretrain_100m.yaml}" \
  --data.sources.pretrain.init_args.train_dir babylm-corpus/train_3M --data.val_every 0.25 \
  --trainer.max_steps "$FIT_STEPS" --trainer.devices 1 \
  --trainer.logger.init_args.save_dir "$WORK/logs" --trainer.logger.init_args.name fit ${FIT_ARGS:-}
has fit && cp "$WORK"/logs/fit/version_0/events.* "$OUT/" && "$PYTHON" - "$WORK/logs/fit/version_0" <<'EOF'
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
events = EventAccumulator(sys.argv[1])
events.Reload()
for tag in ("train/device/items_per_sec", "train/device/mfu", "train/loss"):
    if tag in events.Tags()["scalars"]:
        values = [e.value for e in events.Scalars(tag)]
        print(f"fit {tag}: last {values[-1]:.4g}, best {max(values):.4g} ({len(values)} points)")
EOF

MODEL="$WORK/logs/fit/version_0/hf"
part evaluate "${PART_SECONDS:-150}" "$PYTHON" -m classit.cli evaluate --model "$MODEL" --tasks blimp,ewok \
  --data_dir "$CLASSIT_DATA_DIR/babylm-eval-fast" --out "$OUT/evaluate"
part finetune "${PART_SECONDS:-420}" "$PYTHON" -m classit.cli finetune --model "$MODEL" --tasks rte,mrpc,wsc \
  --seeds 42 --out "$OUT/finetune" ${FINETUNE_ARGS:-}
part bench_scoring "${PART_SECONDS:-240}" "$PYTHON" benchmarks/bench_scoring.py --sizes 100m
part aoa_speed "${PART_SECONDS:-240}" "$PYTHON" benchmarks/aoa_speed.py --size 100m --official_contexts 800
