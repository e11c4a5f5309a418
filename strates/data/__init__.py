"""Data: reading, validating, aligning and splitting bars and macro series (`chaos ingest`)."""
