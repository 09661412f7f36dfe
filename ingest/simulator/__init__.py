"""A traffic simulator: benign populations, hard negatives and extraction rings, with labels."""
