"""Person re-identification: models, feature extraction, re-ranking, evaluation."""
