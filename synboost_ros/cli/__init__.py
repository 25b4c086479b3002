"""The ``synboost`` command line."""
