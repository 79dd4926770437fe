"""Running a tree in a program: ``running()``, ``run()``, signals, the watchdog, logging, the CLI."""
