#!/usr/bin/env bash
# Side-by-side training throughput: WeakSeg (libtorch via TorchSharp) and PyTorch on the same MCTformer-V2 step
# (`weakseg bench train --model cpu`) and segmenter step (`weakseg bench seg --model cpu`), interleaved, at 1 and 2 threads.
#
#   bash bench/side_by_side.sh                 # defaults: 2 rounds (best of 2), threads 1 and 2
#   ROUNDS=3 THREADS="1 2 4" bash bench/side_by_side.sh --override-off   # also WeakSeg with the MKL vendor override off
#
# PyTorch: Debian's python3-torch (apt-get install -y python3-torch libopenblas0-pthread), run by /usr/bin/python3
# (set PYTHON to use another interpreter). Skips with a message when it is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-/usr/bin/python3}"
if [[ ! -x "$PYTHON" ]] || ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "side_by_side: skipped — PyTorch is not importable by $PYTHON (Debian: apt-get install -y python3-torch libopenblas0-pthread; or set PYTHON=...)."
  exit 0
fi
if ! command -v dotnet >/dev/null; then
  echo "side_by_side: skipped — dotnet is not on PATH (see README 'Install')."
  exit 0
fi
CLI=src/WeakSeg.Cli/bin/Release/net10.0/weakseg.dll
if [[ ! -f "$CLI" ]]; then
  echo "building the CLI (Release) ..."
  dotnet build src/WeakSeg.Cli -c Release -v q >/dev/null
fi
exec "$PYTHON" bench/side_by_side.py --cli "$CLI" "$@"
