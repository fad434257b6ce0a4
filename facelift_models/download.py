"""``python -m facelift_models.download``: command alias of :mod:`facelift_models.weights.download`."""

from .weights.download import main

if __name__ == "__main__":
    raise SystemExit(main())
