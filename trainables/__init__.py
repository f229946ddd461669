"""Trainables: data, encoders, losses and the training loop that a Ray Tune trial runs."""
