"""Runnable examples; importable so ``lifecycle run examples.wrap_entrypoint:tree`` works."""
