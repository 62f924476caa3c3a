"""``python -m embedlight.synth``: same as ``embedlight-synth``."""

from embedlight.synth.cli import main

main()
