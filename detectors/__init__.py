"""detectors: features, embeddings, clusters, account behaviour and the account graph."""
