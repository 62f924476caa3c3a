"""Low-level helpers with no embedlight dependencies: atomic file I/O, hardware detection, FLOP models."""
