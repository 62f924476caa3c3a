source .devbundle/setup.sh
B="python3 benchmarks/bench_vs_st.py --device cuda --model /tmp/minilm --data-dir .devbundle/data --peak 51.12,661.05"
timeout 130 python3 -m pytest -q --tb=line tests/integration/test_gpu.py tests/data/test_loader.py -p no:cacheprovider > $OUT/pytest_gpu.txt 2>&1; grep -E "passed|failed|Error|assert" $OUT/pytest_gpu.txt | tail -8
timeout 260 $B --steps 100 --repeats 2 --st-variants default --el "el_fp32=trainer.precision=32-true" --out $OUT/gpu_main2.json
tar czf $OUT/logs.tgz -C $OUT gpu_main2_logs 2>/dev/null; rm -rf $OUT/gpu_main2_logs
