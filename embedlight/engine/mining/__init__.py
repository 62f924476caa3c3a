"""Hard-negative mining (``embedlight-mine``).

* :mod:`.store` encodes a corpus into a resumable on-disk memmap; :mod:`.search` builds faiss indexes.
* :mod:`.negatives` samples negatives from a rank window with false-negative control.
* :mod:`.miner` ties them together for FlagEmbedding-schema rows.

Models are loaded by :mod:`embedlight.models.load` and encoded by :mod:`embedlight.engine.encode`;
pair filtering lives in :mod:`embedlight.engine.filtering`.
"""
