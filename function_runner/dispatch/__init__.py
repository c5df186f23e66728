"""The dispatcher and its periodic roles."""
