#!/usr/bin/env bash
# Table 2 on one GPU: TIGER, BBQRec, LETTER (beauty_gpu_full.yaml) and RecBole's SASRec
# (sasrec_beauty_converged_cpu.yaml) on the prepared Beauty data, ONE AFTER ANOTHER: started
# together they time-slice the GPU and each runs 2.5-4x slower (docs/RESULTS.md, "Paper-size
# runs on one H100"). Logs go to log/gpu-<model>.txt; results to results/ as usual.
#   bash benchmarks/gpu_table2.sh start     # launch the chain in the background (survives the shell)
#   bash benchmarks/gpu_table2.sh wait N    # wait up to N seconds for the chain to finish
# GEN_ARGS adds arguments to the three generative runs, e.g. the launch-bound step compiled
# with CUDA graphs under bfloat16 (README, "Compiled training step"):
#   GEN_ARGS="--compile_generator=reduce-overhead --enable_amp=True" bash benchmarks/gpu_table2.sh start
set -u
G=benchmarks/configs/beauty_gpu_full.yaml
GEN_ARGS=${GEN_ARGS:-}
mkdir -p log
chain() {
  python3 run_recbole_bbq.py --model=TIGER --dataset=Beauty --config_files=$G $GEN_ARGS \
    --tokenizer_epochs=150 --tokenizer_eval_step=50 > log/gpu-TIGER.txt 2>&1
  python3 run_recbole_bbq.py --model=BBQRec --dataset=Beauty --config_files=$G $GEN_ARGS \
    --tokenizer_epochs=10 --tokenizer_eval_step=5 > log/gpu-BBQRec.txt 2>&1
  python3 run_recbole_bbq.py --model=LETTER --dataset=Beauty --config_files=$G $GEN_ARGS \
    --tokenizer_epochs=150 --tokenizer_eval_step=50 --letter_cf_epochs=10 > log/gpu-LETTER.txt 2>&1
  python3 run_recbole_bbq.py --model=SASRec --dataset=Beauty \
    --config_files=benchmarks/configs/sasrec_beauty_converged_cpu.yaml > log/gpu-SASRec.txt 2>&1
}
start() {
  export -f chain; export G GEN_ARGS
  setsid nohup bash -c chain > /dev/null 2>&1 < /dev/null &
}
wait_all() {
  local end=$((SECONDS + $1))
  while pgrep -f run_recbole_bbq.py > /dev/null && [ $SECONDS -lt $end ]; do
    sleep 30
    for m in TIGER LETTER BBQRec SASRec; do
      echo "$(date +%T) $m: $(grep -E 'epoch [0-9]+ (training|evaluating)|test result|Error' log/gpu-$m.txt | tail -1 | cut -c1-160)"
    done
  done
}
case "${1:-}" in
  start) start ;;
  wait) wait_all "${2:-540}" ;;
  *) echo "usage: $0 start|wait N" >&2; exit 2 ;;
esac
