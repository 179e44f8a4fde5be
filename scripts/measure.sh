#!/bin/sh
# Regenerate every number in the README's "Measured" section, then print the tables:
#   sh scripts/measure.sh [fast|refs|signs|speed|all]   (default all; run with the CPU otherwise idle)
#   python scripts/measured.py runs/eval runs/bench
# fast: the default model's rows (~3 min); refs: reference models + baselines on the same seeded
# inputs (~25 min, BM3D is 20 s per crop); speed: 720p bench per backend, OpenVINO INT8 3× (~6 min);
# signs: sign legibility by OCR (`streamer eval-signs`, needs tesseract-ocr; ~8 min).
set -e
what=${1:-all}
B=${STREAMER:-.venv/bin/streamer}
mkdir -p runs/eval runs/bench
S="--clean ../shared/data/images --split val --crop 256 --seed 0 --threads 2"
if [ "$what" = fast ] || [ "$what" = all ]; then
  F="--model fast --model fast-drops"
  for k in dirt raindrop streaks; do
    $B eval $S --no-baselines --corruption $k $F --json runs/eval/fast_$k.json > /dev/null
  done
  $B eval $S --no-baselines --corruption dirt --heavy --model fast --json runs/eval/fast_dirt_heavy.json > /dev/null
  $B eval $S --no-baselines --corruption dirt --crop 0 --model fast --json runs/eval/fast_dirt_full.json > /dev/null
  $B eval $S --no-baselines --corruption dirt --frame-px 1920 --model fast --json runs/eval/fast_dirt_big.json > /dev/null
  $B eval $S --no-baselines --corruption raindrop --heavy $F --json runs/eval/fast_raindrop_heavy.json > /dev/null
  $B eval $S --no-baselines --corruption raindrop --frame-px 1920 $F --json runs/eval/fast_raindrop_big.json > /dev/null
  for k in dirt streaks; do
    $B eval $S --no-baselines --corruption $k --model fast --backend openvino --int8 --json runs/eval/int8_$k.json > /dev/null
    $B eval $S --no-baselines --corruption $k --model fast --backend openvino --json runs/eval/ovfp32_$k.json > /dev/null
  done
  $B eval $S --no-baselines --corruption raindrop --model fast-drops --backend openvino --int8 --json runs/eval/int8_drops_raindrop.json > /dev/null
  $B eval $S --no-baselines --corruption raindrop --model fast-drops --backend openvino --json runs/eval/ovfp32_drops_raindrop.json > /dev/null
fi
if [ "$what" = refs ] || [ "$what" = all ]; then
  $B eval $S --corruption dirt --model eigen2013-dirt --model drn --json runs/eval/ref_dirt.json > /dev/null
  $B eval $S --corruption dirt --heavy --model eigen2013-dirt --no-bm3d --json runs/eval/ref_dirt_heavy.json > /dev/null
  $B eval $S --corruption raindrop --no-bm3d --model eigen2013-rain --model drn --json runs/eval/ref_raindrop.json > /dev/null
  $B eval $S --corruption streaks --no-bm3d --model drn --json runs/eval/ref_streaks.json > /dev/null
fi
if [ "$what" = signs ] || [ "$what" = all ]; then
  for k in dirt raindrop streaks; do
    for h in "" --heavy; do
      $B eval-signs --clean ../shared/data/images --split val --seed 0 --threads 2 --corruption $k $h \
        --model fast --model fast-drops --model drn --json runs/eval/signs_$k${h:+_heavy}.json > /dev/null
    done
  done
fi
if [ "$what" = speed ] || [ "$what" = all ]; then
  Q="--size 1280x720 --frames 120 --json"
  $B bench $Q --backend torch > runs/bench/1_torch.json
  $B bench $Q --backend onnxruntime > runs/bench/2_ort.json
  $B bench $Q --backend onnxruntime --int8 > runs/bench/3_ort_int8.json
  $B bench $Q --backend openvino --inflight 1 > runs/bench/4_ov_fp32.json
  $B bench $Q --backend openvino --int8 --inflight 1 > runs/bench/5_ov_int8_1.json
  for r in a b c; do
    $B bench $Q --backend openvino --int8 --inflight 2 > runs/bench/6_ov_int8_2$r.json
  done
  $B bench $Q --model fast-drops --backend openvino --int8 --inflight 2 > runs/bench/7_drops_ov_int8_2.json
fi
echo "measured: python scripts/measured.py runs/eval runs/bench [--readme README.md]"
