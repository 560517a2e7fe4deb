"""Alembic migrations of the ReviewBridge schema, shipped inside the package (see app/core/db.py)."""
