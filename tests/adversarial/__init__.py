"""The adversarial suite (issue 13): random, malformed, hostile and faulty input; see README.md."""
