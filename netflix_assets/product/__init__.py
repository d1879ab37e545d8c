"""The product database's pure core: migrations, billing, the account side of the simulator.
No Dagster here; assets/product.py wires it."""
