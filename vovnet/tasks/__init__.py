"""The benchmarks, one folder per task: the plugins. What a folder holds, and how a task is found and loaded
by name, is in vovnet/registry.py; the interfaces a task's modules satisfy live with the engine that calls
them (vovnet/data/interfaces.py, vovnet/evaluation/interfaces.py). Nothing below this package imports it."""
