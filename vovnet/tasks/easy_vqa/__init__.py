"""The easy_vqa task: see vovnet/tasks/__init__.py for what its folder holds."""
