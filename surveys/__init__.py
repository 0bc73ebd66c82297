"""Survey definitions: schema, YAML loader and validator, skip logic, the engine, the preview."""
