"""Property files (YAML) of recbole_bbq; shipped as the package recbole_bbq.properties."""
