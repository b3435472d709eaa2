"""The defenses, one file each, registered in mesa/method/registry.py's MODULES."""
