"""Orders: created by the orders issue."""
