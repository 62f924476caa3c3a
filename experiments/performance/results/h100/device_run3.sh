source .devbundle/setup.sh
B="python3 benchmarks/bench_vs_st.py --device cuda --model /tmp/minilm --data-dir .devbundle/data --peak 51.12,661.05"
timeout 130 python3 -m pytest -q --tb=line -m gpu tests/integration/test_gpu.py -p no:cacheprovider > $OUT/pytest_gpu.txt 2>&1; grep -E "passed|failed|Error|assert" $OUT/pytest_gpu.txt | tail -8
timeout 330 $B --steps 100 --repeats 2 --st-variants default,bf16 --el "el_fp32=trainer.precision=32-true" --out $OUT/gpu_main.json
timeout 100 $B --steps 100 --repeats 1 --skip-eval --skip-encode --st-variants "" --no-el-default \
  --el "el_w0=data.num_workers=0" --el "el_cudnn=backbone.cudnn_attention=true" --el "el_fp32_w0=trainer.precision=32-true data.num_workers=0" \
  --out $OUT/gpu_levers.json
tar czf $OUT/logs.tgz -C $OUT gpu_main_logs gpu_levers_logs 2>/dev/null; rm -rf $OUT/gpu_main_logs $OUT/gpu_levers_logs
