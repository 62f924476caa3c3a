from embedlight.registry import _load_all

# Hydra imports this package to read the YAML files (pkg://embedlight.conf), so composing these configs
# from anywhere (not only through embedlight-train) finds every registered backbone/pooler/loss.
_load_all()
