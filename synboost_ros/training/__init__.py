"""Training loops for segmentation, synthesis, dissimilarity and the ensemble."""
