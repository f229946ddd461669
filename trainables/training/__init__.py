"""The training loop: framework-free, so it runs and is tested without Ray."""
