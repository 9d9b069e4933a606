"""Events: created by the catalogue issue."""
