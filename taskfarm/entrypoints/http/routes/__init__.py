"""The endpoints, grouped by what they act on."""
