"""Helpers shared by the integration tests: real processes, the real kubectl."""
