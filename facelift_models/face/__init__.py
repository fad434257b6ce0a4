"""Stage 1, the face: background removal (:mod:`.background`, U²-Net), MTCNN detection (:mod:`.mtcnn`) and
FaceLift's crop/composite (:mod:`.crop`)."""
