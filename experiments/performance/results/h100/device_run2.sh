source .devbundle/setup.sh
B="python3 benchmarks/bench_vs_st.py --device cuda --model /tmp/minilm --data-dir .devbundle/data --peak 51.12,661.05"
timeout 120 python3 -m pytest -q -x --tb=short -m gpu tests/integration/test_gpu.py -p no:cacheprovider > $OUT/pytest_gpu.txt 2>&1; tail -3 $OUT/pytest_gpu.txt
P="+callbacks.profile._target_=bench_vs_st.ProfileSteps +callbacks.profile.start=20 +callbacks.profile.steps=10"
timeout 200 $B --steps 40 --repeats 1 --skip-eval --skip-encode --st-variants "" --no-el-default \
  --el "el_prof=$P +callbacks.profile.out=$OUT/prof_bf16.txt" \
  --el "el_fp32_prof=trainer.precision=32-true $P +callbacks.profile.out=$OUT/prof_fp32.txt" \
  --out $OUT/gpu_prof.json
timeout 240 $B --steps 100 --repeats 1 --skip-eval --skip-encode --st-variants "" --no-el-default \
  --el "el_w8=data.num_workers=8" --el "el_fp32_w8=trainer.precision=32-true data.num_workers=8" \
  --el "el_bf16_pad64=+data.pad_to_multiple_of=64" \
  --out $OUT/gpu_levers2.json
tar czf $OUT/logs.tgz -C $OUT gpu_prof_logs gpu_levers2_logs 2>/dev/null; rm -rf $OUT/gpu_prof_logs $OUT/gpu_levers2_logs
