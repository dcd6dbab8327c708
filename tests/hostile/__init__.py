"""Hostile input, faults and load against a live rtmp.Server (issue 10); see refs/hostile.md."""
