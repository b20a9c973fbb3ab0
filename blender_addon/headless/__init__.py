"""Headless shots: the add-on's whole path from footage to a rendered shot, as one command.

    python -m blender_addon.headless SCENE [--footage DIR] --out OUT [--final] [--still FRAME]

Runs in Blender's Python (the `bpy` module, no window); talks to the backend only through backend.ipc.
See runner.py for the steps and __main__.py for the options.
"""
