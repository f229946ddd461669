"""Benchmarks: `python -m bench.<name>` writes bench/results/<name>.json (`--smoke`: seconds).

Before any benchmark imports Ray: a local Ray binds to 127.0.0.1 only, with gloss's settings."""

from study.ray_session import prepare_environment

prepare_environment(None)
