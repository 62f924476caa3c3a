"""Dataset builders: turn raw corpora into embedlight training and evaluation files.

Each builder is a function ``(out_dir, ..., rebuild=False) -> summary`` (:mod:`.bbc`, :mod:`.icl_english`)
with a config in ``conf/dataset/``; ``embedlight-prepare dataset=<name>`` runs one
(:func:`embedlight.data.builders.run.run`), and a training data config may call the same function as its
``prepare`` step.
"""
