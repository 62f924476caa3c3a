"""The model seam: ``Embedder`` (backbone + pooler + normalisation), its export, and loading any saved model."""
