"""Ports: the interfaces services depend on, implemented by the infrastructure."""
