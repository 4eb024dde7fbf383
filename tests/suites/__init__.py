"""Test suites that several test modules run, each against other fixtures (not collected here)."""
