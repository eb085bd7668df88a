"""MODA training recipes (see docs/MODA.md)."""
