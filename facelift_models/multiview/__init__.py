"""Stage 2, six views from one face: multi-view attention, UNet, loading, view embeddings and the sampler.

:mod:`.pipeline` gathers the public entry points (what the ComfyUI nodes call).
"""
