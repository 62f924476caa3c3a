# sourced by each device command: wheels the GPU image lacks, the fp32 MiniLM, environment
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 WANDB_MODE=disabled
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devbundle/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; echo "cpus $(nproc)"; lscpu | grep "Model name"; } | tee $OUT/machine.txt
python3 -c "import torch, transformers, lightning, sentence_transformers, datasets, pyarrow, hydra, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'lightning', lightning.__version__, 'st', sentence_transformers.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__, 'peft', peft.__version__)" | tee -a $OUT/machine.txt || exit 1
python3 - <<'PY'
import shutil
from safetensors.torch import load_file, save_file
shutil.copytree(".devbundle/minilm16", "/tmp/minilm", dirs_exist_ok=True)
sd = load_file("/tmp/minilm/model.safetensors")
save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}, "/tmp/minilm/model.safetensors", metadata={"format": "pt"})
PY
