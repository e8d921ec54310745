"""Thin resolvers: arguments in, one service call, GraphQL type out."""
