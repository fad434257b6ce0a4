"""Stage 1, the face: MTCNN detection (:mod:`.mtcnn`) and FaceLift's crop/composite (:mod:`.crop`)."""
