"""Real 2-process DDP vs 1 process over the same global batches: max weight difference after 3 SGD steps.

Run: PYTHONPATH=. python experiments/ddp/equivalence.py  (writes experiments/ddp/equivalence.json)
Also runs the negative control: DDP without cross-device negatives (the 1-process run scores every
query against all 4 rows' documents, the DDP ranks only against their own 2) must differ.
"""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from embedlight.testing import make_tiny_model  # noqa: E402
from embedlight.utils.io import write_json  # noqa: E402
from tests.helpers import tiny_overrides  # noqa: E402
from tests.integration.ddp_harness import ddp_and_single, max_weight_diff  # noqa: E402

results = {}
with tempfile.TemporaryDirectory() as tmp:
    tiny = make_tiny_model(os.path.join(tmp, "tiny"), "bert")
    for name, cross in (("cross_device_on", "true"), ("control_cross_device_off_in_ddp", None)):
        work = os.path.join(tmp, name)
        base = tiny_overrides(tiny, work, extra=["data.group_size=3", "loss.cross_device=true"])
        if cross is None:  # DDP run without cross-device negatives; the 1-process run is unchanged
            base = [*base, "loss.cross_device=false"]
        ddp, single, _ = ddp_and_single(base, work, steps=3, per_rank_batch=2)
        results[name] = max_weight_diff(ddp, single)
        print(name, results[name], flush=True)
write_json(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "equivalence.json"),
    {
        "max_abs_weight_diff": results,
        "setup": "tiny BERT (2 layers, hidden 32), 3 SGD steps lr 0.5, dropout off, B=2 per rank x 2 gloo "
        "processes vs 1 process x 4 rows, group size 3 (2 hard negatives), InfoNCE t=0.05",
        "command": "PYTHONPATH=. python experiments/ddp/equivalence.py",
        "machine": "2-core AMD EPYC with AVX512-BF16, 24 GiB, CPU only, shared with other jobs",
    },
)
