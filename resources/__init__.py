"""One ConfigurableResource per external system; the only door from an asset to a service."""
