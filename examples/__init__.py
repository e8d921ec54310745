"""Small clients of the recengine API, run by tests/examples against a live server."""
