"""Plain logic of the add-on's jobs: no bpy here, so it runs (and is tested) anywhere."""
