"""A typed Python client generated from schema.graphql by ariadne-codegen."""
