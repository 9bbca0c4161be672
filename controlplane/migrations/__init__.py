"""Alembic migrations of the control plane's store (run with Store.migrate())."""
