"""vireid.cache: the heatmap cache's format, its reader and its writer."""
