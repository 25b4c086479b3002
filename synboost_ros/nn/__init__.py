"""Network architectures, one per module; normalisation layers and losses apart."""
