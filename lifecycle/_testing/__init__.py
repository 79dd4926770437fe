"""The testing kit behind ``lifecycle.testing`` and ``lifecycle.pytest_plugin``."""
