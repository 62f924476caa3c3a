"""The data engine: mining hard negatives, filtering pairs, teacher scoring and synthetic data."""
