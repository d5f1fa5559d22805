"""Small helpers shared by every layer: atomic writes, checksums, table column lookup."""
