"""Model tests share the trained world of tests/conftest.py."""
