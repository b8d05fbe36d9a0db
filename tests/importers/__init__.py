"""Importer tests (a package, so that their shared helpers in ``conftest.py`` can be imported)."""
