"""The run directory: its layout (every file name), its records, and its one owner (create, resume, commit, load)."""
