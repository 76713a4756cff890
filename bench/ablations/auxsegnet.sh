#!/usr/bin/env bash
# AuxSegNet+ ablation on the built-in benchmark (cpu preset): segmentation only; + saliency auxiliary task; + cross-task affinity;
# + unary affinity (the full model); and label-updating rounds 1–3 of the full model (one --rounds 3 run: report.json's "rounds"
# list holds cam_miou, pseudo_miou and the method's own val_miou after each round).
#
#   bash bench/ablations/auxsegnet.sh [OUT]          # OUT defaults to runs/ablations/auxsegnet
#   SMOKE=1 bash bench/ablations/auxsegnet.sh OUT    # a few steps of every path (rounds 2) to check that it runs, not a measurement
#   ROWS="seg-only plus-sal" bash bench/ablations/auxsegnet.sh OUT   # some rows only (e.g. two scripts in parallel, THREADS=1 each)
#   STEPS=1500 bash bench/ablations/auxsegnet.sh OUT                 # another training length per round (--cam-steps)
#
# Every configuration trains on the same generated data and the same saliency maps (estimated once by `synth --saliency`, written
# to DATA/Saliency). THREADS (default 1) sets libtorch's threads; a pipeline folder is resumable (run the script again after an
# interruption). The summary at the end prints each report's numbers. The segmenter trained on ground truth (upper_bound_miou)
# is the same for every configuration, so only the full model's run (plus-unary) trains it.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-runs/ablations/auxsegnet}"
THREADS="${THREADS:-1}"
CLI=src/WeakSeg.Cli/bin/Release/net10.0/weakseg
if [[ ! -x "$CLI" ]]; then
  echo "building the CLI (Release) ..."
  dotnet build src/WeakSeg.Cli -c Release -v q >/dev/null
fi
export OMP_WAIT_POLICY=PASSIVE

DATA="$OUT/data"
if [[ "${SMOKE:-0}" == 1 ]]; then
  SYNTH=(--train 16 --val 4)
  SHORT=(--cam-steps 6 --set trainer.batch_size=4 --set model.label_start_step=2 --seg-steps 4)
  ROUNDS=2
else
  SYNTH=()
  SHORT=()
  ROUNDS=3
fi
[[ -n "${STEPS:-}" ]] && SHORT+=(--cam-steps "$STEPS")     # STEPS=1500: every round trains that many steps instead of the preset's
[[ -f "$DATA/.synth-done" ]] || { "$CLI" synth --out "$DATA" --saliency "${SYNTH[@]}"; touch "$DATA/.synth-done"; }

run() {  # NAME, then pipeline options
  local name="$1"; shift
  echo "== $name"
  "$CLI" pipeline --method auxsegnet --data "$DATA" --saliency "$DATA/Saliency" --out "$OUT/$name" --threads "$THREADS" \
    "${SHORT[@]}" "$@"
}

run_row() {
  case "$1" in
    seg-only)   run seg-only   --no-upper-bound --set model.saliency_auxiliary=false --set model.cross_task_affinity=false --set model.unary_affinity=false ;;
    plus-sal)   run plus-sal   --no-upper-bound --set model.saliency_auxiliary=true  --set model.cross_task_affinity=false --set model.unary_affinity=false ;;
    plus-cross) run plus-cross --no-upper-bound --set model.saliency_auxiliary=true  --set model.cross_task_affinity=true  --set model.unary_affinity=false ;;
    plus-unary) run plus-unary --set model.saliency_auxiliary=true  --set model.cross_task_affinity=true  --set model.unary_affinity=true ;;
    rounds-*)   run "$1" --no-upper-bound --rounds "$ROUNDS" ;;
    *) echo "unknown row '$1'" >&2; exit 2 ;;
  esac
}
ALL="seg-only plus-sal plus-cross plus-unary rounds-$ROUNDS"
for row in ${ROWS:-$ALL}; do run_row "$row"; done

echo
echo "configuration  cam_miou  pseudo_miou  val_miou  seconds"
for name in ${ROWS:-$ALL}; do
  python3 - "$OUT/$name/report.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
f = lambda v: "-" if v is None else f"{100 * v:.1f}"
print(f"{sys.argv[2]:<14} {f(r.get('cam_miou')):>8} {f(r.get('pseudo_miou')):>12} {f(r.get('val_miou')):>9} {r['seconds']:>8.0f}")
for x in r.get("rounds") or []:
    print(f"  round {x['round']:<6} {f(x.get('cam_miou')):>8} {f(x.get('pseudo_miou')):>12} {f(x.get('val_miou')):>9}   (round labels; the method's own segmentation)")
PY
done
