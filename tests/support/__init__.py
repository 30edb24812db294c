"""Helpers the tests share: plain functions and classes (fixtures stay in conftest.py)."""
