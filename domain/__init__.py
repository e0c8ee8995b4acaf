"""The heart of the service: entities, value objects, errors and ports. Pure Python."""
