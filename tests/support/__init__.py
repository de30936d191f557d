"""Helpers shared by the test suites: real binaries, free ports, polling, child processes."""
