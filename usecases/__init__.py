"""Use cases: what buurtstem does, each in one transaction, returning what happened as data."""
