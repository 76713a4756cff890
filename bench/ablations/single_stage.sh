#!/usr/bin/env bash
# Ablations of the single-stage methods on the built-in benchmark: every row is one `weakseg pipeline` run with the same
# preset (cpu: the method's own schedule, 1500 steps of 8 images), the same seed and the same thread count; only `--set model.…`
# switches differ. Each run writes OUT/ROW/report.json (cam_miou, artifact_rate, pseudo_miou, val_miou, seconds).
#
#   bash bench/ablations/single_stage.sh                  # all rows, into runs/ablations/single_stage
#   OUT=/tmp/abl ROWS="more more-lam-labels" bash bench/ablations/single_stage.sh
#   BACKBONE=patch bash bench/ablations/single_stage.sh   # the cpu ViT from scratch instead of the pretrained hybrid
#
# MoRe rows (ToCo; ToCo + GCR; ToCo + LIR; MoRe) run on the MoRe code path: "more-base" is MoRe's network (C class
# tokens, uniqueness loss) with GCR and LIR (CRE + URE) off, "+gcr" / "+lir" switch one of them on. The ToCo row proper is
# `--method toco` (one class token, no uniqueness loss). Diagnostic rows (not in the default ROWS) move the MoRe base towards ToCo
# one preset difference at a time: ToCo's loss weights; then no uniqueness loss; then no register tokens and ToCo's
# position-embedding resize (C class tokens remain); then GCR + LIR back on that register-free base ("more-as-toco", and
# "more-as-toco-detected" with URE reading the detected token; "more-as-toco-gcr|cre|ure" one module at a time;
# "more-as-toco-cre-late" and "more-cre-late" start CRE at step 750 instead of 0). Every MoRe row is scored twice: the CAM
# maps (fused) and the LAM maps (`--map lam`, the same training and decoder reused from the run's stage ledger); report.json is
# the last map's, so the first one is kept as report-fused.json.
#
# FSR rows: base (unc.FSR and cer.FSR off: one view, no mask, no teacher); + unc.FSR with random / uncertainty masking; + cer.FSR
# with GAP / GMP / the aggregator; both (the method).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_WAIT_POLICY=PASSIVE
OUT="${OUT:-runs/ablations/single_stage}"
SEED="${SEED:-0}"
THREADS="${THREADS:-2}"
BACKBONE="${BACKBONE:-resnet18-s8}"
CLI=src/WeakSeg.Cli/bin/Release/net10.0/weakseg.dll
if [[ ! -f "$CLI" ]]; then
  echo "building the CLI (Release) ..."
  dotnet build src/WeakSeg.Cli -c Release -v q >/dev/null
fi

pipeline() {   # ROW METHOD [--set …]
  local row="$1" method="$2"; shift 2
  echo "=== $row: weakseg pipeline --method $method $*"
  dotnet "$CLI" pipeline --method "$method" --preset cpu --backbone "$BACKBONE" --seed "$SEED" --threads "$THREADS" \
    --out "$OUT/$row" "$@"
}

with_lam() {   # ROW [--set …]: the fused (CAM) run, then the LAM maps of the same training
  local row="$1"; shift
  pipeline "$row" more "$@"
  cp "$OUT/$row/report.json" "$OUT/$row/report-fused.json"
  pipeline "$row" more "$@" --map lam
}

MORE_BASE="--set model.use_gcr=false --set model.use_lir=false"
TOCO_WEIGHTS="--set model.patch_contrast.weight=0.2 --set model.segmentation.weight=0.1"
NO_UNIQUENESS="$TOCO_WEIGHTS --set model.uniqueness.weight=0"
AS_TOCO="$NO_UNIQUENESS --set model.register_tokens=0 --set model.backbone.position_embedding_resize=BicubicSize"
CRE_ONLY="--set model.use_gcr=false --set model.uncertain_relation.weight=0"
CRE_LATE="--set model.confident_relation.start_step=750"
NO_CER="--set model.use_certain_distillation=false"
NO_UNC="--set model.use_uncertain_distillation=false"

run_row() {
  case "$1" in
    toco)              pipeline toco toco ;;
    more-base)         with_lam more-base $MORE_BASE ;;
    more-gcr)          with_lam more-gcr --set model.use_lir=false ;;
    more-lir)          with_lam more-lir --set model.use_gcr=false ;;
    more)              with_lam more ;;
    more-lam-labels)   with_lam more-lam-labels --set model.segmentation_labels=lam ;;
    # diagnostics of the gap between the MoRe network (GCR and LIR off) and ToCo, one preset difference at a time
    more-base-toco-weights)  pipeline more-base-toco-weights more $MORE_BASE $TOCO_WEIGHTS ;;
    more-base-no-uniqueness) pipeline more-base-no-uniqueness more $MORE_BASE $NO_UNIQUENESS ;;
    more-base-as-toco)       pipeline more-base-as-toco more $MORE_BASE $AS_TOCO ;;
    # MoRe's GCR + LIR on that register-free base, with URE's official read and with the corrected one
    more-as-toco)            with_lam more-as-toco $AS_TOCO ;;
    more-as-toco-detected)   with_lam more-as-toco-detected $AS_TOCO --set model.uncertain_token_position=Detected ;;
    # one MoRe module at a time on the register-free base: GCR alone; LIR with CRE only; LIR with URE only
    more-as-toco-gcr)        with_lam more-as-toco-gcr $AS_TOCO --set model.use_lir=false ;;
    more-as-toco-cre)        with_lam more-as-toco-cre $AS_TOCO $CRE_ONLY ;;
    more-as-toco-ure)        with_lam more-as-toco-ure $AS_TOCO --set model.use_gcr=false --set model.confident_relation.weight=0 ;;
    # CRE switched on only at the step where the relation masks move to the final CAM (cpu preset: 750) instead of step 0
    more-as-toco-cre-late)   with_lam more-as-toco-cre-late $AS_TOCO $CRE_ONLY $CRE_LATE ;;
    more-cre-late)           with_lam more-cre-late $CRE_LATE ;;
    fsr-base)          pipeline fsr-base fsr $NO_CER $NO_UNC ;;
    fsr-unc-random)    pipeline fsr-unc-random fsr $NO_CER --set model.mask_strategy=random ;;
    fsr-unc-uncertain) pipeline fsr-unc-uncertain fsr $NO_CER ;;
    fsr-cer-gap)       pipeline fsr-cer-gap fsr $NO_UNC --set model.certain_token_pooling=gap ;;
    fsr-cer-gmp)       pipeline fsr-cer-gmp fsr $NO_UNC --set model.certain_token_pooling=gmp ;;
    fsr-cer-aggregator) pipeline fsr-cer-aggregator fsr $NO_UNC ;;
    fsr)               pipeline fsr fsr ;;
    *) echo "unknown row '$1'" >&2; exit 2 ;;
  esac
}

ROWS="${ROWS:-toco more-base more-gcr more-lir more more-lam-labels fsr-base fsr-unc-random fsr-unc-uncertain fsr-cer-gap fsr-cer-gmp fsr-cer-aggregator fsr}"
for row in $ROWS; do run_row "$row"; done

echo
printf '%-20s %-6s %9s %9s %9s %9s\n' row map cam_miou artifact pseudo val
for row in $ROWS; do
  for report in "$OUT/$row/report-fused.json" "$OUT/$row/report.json"; do
    [[ -f "$report" ]] || continue
    python3 - "$row" "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
f = lambda k: "-" if r.get(k) is None else f"{100 * r[k]:.1f}"
print(f"{sys.argv[1]:<20} {r.get('map', '?'):<6} {f('cam_miou'):>9} {f('artifact_rate'):>9} {f('pseudo_miou'):>9} {f('val_miou'):>9}")
PY
  done
done
