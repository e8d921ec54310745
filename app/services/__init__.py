"""Domain services: logic between resolvers and repositories (no GraphQL or HTTP imports)."""
