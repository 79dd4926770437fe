"""The kernel: declaring components, running and stopping them, reports and errors."""
