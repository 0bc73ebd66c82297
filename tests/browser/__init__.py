"""Browser tests: headless Chromium drives the sandbox page."""
