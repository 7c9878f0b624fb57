#!/usr/bin/env bash
# bench/scaling_model.py: the committed inputs give the tables quoted in
# docs/scaling.md, and one cell checked by hand: 250 M floats (1 GB) over
# 2 ranks at 10 Gb/s without latency or summing cost is one buffer's worth
# over the link, 2 (N-1)/N * 1e9 B / 1.25e9 B/s = 800 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 > /dev/null || { echo "skipped: no python3"; exit 77; }
tables=$(python3 bench/scaling_model.py --inputs bench/scaling-inputs.json)
# docs/scaling.md quotes the tables of the committed inputs: every table row
# the script prints must be in the page (regenerate it when the inputs change)
while IFS= read -r line; do
    grep -qF -- "$line" docs/scaling.md || { echo "docs/scaling.md lacks: $line"; exit 1; }
done < <(echo "$tables" | grep '^| [0-9]')
out=$(python3 bench/scaling_model.py --workload x:1000:250000000:100 --latency-us 10=0,25=0,100=0 --reduce-gbs 1e12)
echo "$out" | grep -q '^| 2 | 850.00 (800.00) 6%' || { echo "unexpected table:"; echo "$out"; exit 1; }
echo ok
