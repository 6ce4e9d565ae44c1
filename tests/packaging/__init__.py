"""Packaging tests: declared dependencies and a non-editable install."""
