"""Encoders by name or alias, pooling, the classifier, and the frozen-embedding cache."""
