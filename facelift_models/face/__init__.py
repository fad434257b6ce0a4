"""Face stage: background removal, face detection and the official face crop."""
