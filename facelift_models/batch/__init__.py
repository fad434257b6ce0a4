"""Batch processing: many photos -> FaceLift heads, in one process or on Ray (``python -m facelift_models.batch``).

``pipeline``: one photo -> Gaussians -> files (the library function the runner calls per photo).
``runner``: photo discovery, the JSON-lines manifest, resume, Ray worker actors.  Ray is optional: it is imported
only when a Ray run starts.  See docs/batch.md.
"""
