"""Verbs of the ``snn-perception`` command line, one module each."""
