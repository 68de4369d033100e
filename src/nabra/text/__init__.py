"""Text processing: the one Arabic normalizer used by data preparation and every metric."""
