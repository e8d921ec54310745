"""GraphQL schema: one module per type family; `schema.py` assembles them."""
