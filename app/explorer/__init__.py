"""The explorer: a static web page at /explorer that shows what the engine recommends and why."""
