"""Pixels to plate text: detection, recognition, plate grammar and passage voting."""
