"""Checks (pure functions of gateway data), the verdict (pure), and the runner (I/O, concurrency)."""
