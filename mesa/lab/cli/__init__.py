"""`python -m mesa`: argument parsing, the checks made before the machine lock, and each command."""
