"""Notices, the 3-month rule, the review queue and the operator console."""
