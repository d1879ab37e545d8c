"""The real-time path: the PyFlink QoE job and the viewing-event simulator."""
