"""Data engine: hard-negative mining (``embedlight-mine``) and pair filtering (``embedlight-filter``).

* :mod:`.encoders` loads any model (export, run checkpoint, bundled name, hub id) behind one ``encode``.
* :mod:`.store` encodes a corpus into a resumable on-disk memmap; :mod:`.search` builds faiss indexes.
* :mod:`.negatives` samples negatives from a rank window with false-negative control.
* :mod:`.miner` ties them together for FlagEmbedding-schema rows; :mod:`.filtering` drops noisy pairs.
"""
