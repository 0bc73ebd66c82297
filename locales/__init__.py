"""Message catalogues per language, and resident language detection."""
