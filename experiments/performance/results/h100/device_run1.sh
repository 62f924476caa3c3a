source .devbundle/setup.sh
B="python3 benchmarks/bench_vs_st.py --device cuda --model /tmp/minilm --data-dir .devbundle/data"
timeout 60 python3 -m embedlight.utils.matmul_peak --device cuda --size 8192 --json $OUT/matmul.json
PEAK=$(python3 -c "import json; t=json.load(open('$OUT/matmul.json'))['tflops']; print(f\"{t['fp32']},{t['bf16']}\")")
echo "peak $PEAK"
timeout 150 python3 -m pytest -q -m gpu tests/integration/test_gpu.py -p no:cacheprovider 2>&1 | tail -30 | tee $OUT/pytest_gpu.txt
timeout 300 $B --steps 100 --repeats 2 --st-variants default,bf16 --el "el_fp32=trainer.precision=32-true" --peak $PEAK --out $OUT/gpu_main.json
timeout 120 $B --steps 100 --repeats 1 --skip-eval --skip-encode --st-variants "" --no-el-default --el "el_w0=data.num_workers=0" --el "el_fp32_w0=trainer.precision=32-true data.num_workers=0" --peak $PEAK --out $OUT/gpu_levers.json
tar czf $OUT/logs.tgz -C $OUT gpu_main_logs gpu_levers_logs 2>/dev/null; rm -rf $OUT/gpu_main_logs $OUT/gpu_levers_logs
ls -la $OUT
