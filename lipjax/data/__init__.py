"""Data: audio features, lip crops, the feature set, the input pipeline, video files."""
