"""Dataset builders: turn raw corpora into embedlight training and evaluation files."""
