"""recengine: a content recommendation engine with a GraphQL API."""

__version__ = "0.1.0"
