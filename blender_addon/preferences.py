"""The add-on's preferences: where the backend is, its keys, and how to start one on this machine."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from .jobs.local_backend import DEFAULT_ARGS

ADDON_ID = __package__


class StagePreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    address: StringProperty(name="Backend Address", default="tcp://127.0.0.1:5555",
                            description="the backend's ZeroMQ address (tcp://host:port)")
    client_secret_key: StringProperty(name="Client Secret Key", subtype="FILE_PATH",
                                      description="this machine's .key_secret (CURVE); needed off this machine")
    server_public_key: StringProperty(name="Server Public Key", subtype="FILE_PATH",
                                      description="the backend's server.key (CURVE)")
    backend_python: StringProperty(name="Backend Python", subtype="FILE_PATH",
                                   description="python executable of the backend's environment")
    backend_args: StringProperty(name="Backend Arguments", default=DEFAULT_ARGS,
                                 description="arguments after the python; {bind} {store} {device} {models} are filled in")
    backend_cwd: StringProperty(name="Working Folder", subtype="DIR_PATH",
                                description="folder the backend starts in (the repository, unless it is installed)")
    store_dir: StringProperty(name="Store Folder", subtype="DIR_PATH", default="~/.cache/diffusion-stage/store")
    device: EnumProperty(name="Device", items=[("", "Auto", "GPU when the backend sees one"),
                                               ("cuda", "GPU (CUDA)", ""), ("cpu", "CPU", "")], default="")
    models_config: StringProperty(name="Model Config", subtype="FILE_PATH",
                                  description="JSON file mapping model roles to local folders or files")

    def draw(self, context):
        layout = self.layout
        col = layout.column(heading="Connection")
        col.prop(self, "address")
        col.prop(self, "client_secret_key")
        col.prop(self, "server_public_key")
        col = layout.column(heading="Local backend")
        col.prop(self, "backend_python")
        col.prop(self, "backend_args")
        col.prop(self, "backend_cwd")
        col.prop(self, "store_dir")
        col.prop(self, "device")
        col.prop(self, "models_config")


class PreferencesError(RuntimeError):
    pass


def get_prefs(context=None) -> StagePreferences:
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    if addon is None:
        raise PreferencesError(f"the add-on {ADDON_ID!r} is not enabled in Preferences > Add-ons, "
                               "so its preferences cannot be read; enable it there")
    return addon.preferences


def client_keys(prefs: StagePreferences):
    """ClientKeys from the preferences, None when neither key is set; a clear error when only one is."""
    from .ipc import ClientKeys

    secret, public = (bpy.path.abspath(p) if p else "" for p in (prefs.client_secret_key, prefs.server_public_key))
    if not secret and not public:
        return None
    if not (secret and public):
        raise PreferencesError("CURVE needs both key files: set Client Secret Key (your .key_secret) and "
                               "Server Public Key (the backend's server.key) in the add-on's preferences")
    return ClientKeys(Path(secret), Path(public))


classes = (StagePreferences,)
