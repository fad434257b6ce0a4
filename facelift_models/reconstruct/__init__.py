"""Stage 3, Gaussians from the views: GS-LRM (:mod:`.gslrm`), its checkpoint reader (:mod:`.checkpoint`) and the
Gaussian filters (:mod:`.filters`)."""
