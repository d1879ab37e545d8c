"""Sensors, one module per trigger."""
