"""Development tooling shared by tests, scripts and benchmarks: a real ComfyUI host (:mod:`.comfy_host`), the pack
load probe (:mod:`.pack_load`), the writer of tiny official-format checkpoints (:mod:`.tiny_models`), the
photo folders of the batch tests and benchmark (:mod:`.batch_photos`) and synthetic splats of known geometry with
the mesh measures (:mod:`.mesh_shapes`).

Not part of the node pack: ComfyUI imports only the pack's root ``__init__.py`` (which loads ``nodes/``), never this
folder, and nothing under ``facelift_models/`` or ``nodes/`` imports it.
"""
