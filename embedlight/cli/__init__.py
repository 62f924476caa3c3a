"""Command-line entry points: each ``embedlight-*`` command is a thin Hydra main over a library function."""
