"""Diffusion Stage: AI-diffused characters and environments inside a lit Blender scene.

The add-on talks to a Diffusion Stage backend over ZeroMQ (see the project's DESIGN.md). Registration
goes through one `classes` tuple; `unregister` undoes all of it and lets go of every socket, timer and
child process the add-on holds, so enabling and disabling it any number of times leaves nothing behind.
"""

import bpy

from . import operators, panels, preferences, properties, runtime

classes = (
    *preferences.classes,
    *properties.classes,
    *operators.classes,
    *panels.classes,
)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.attach()


def unregister():
    runtime.shutdown()
    properties.detach()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
