"""Cancellation-safe helpers: gather, SingleFlight, call_with_timeout, scoped_env, on_failure."""
