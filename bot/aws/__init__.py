"""The only package that calls AWS (EC2, STS, Auto Scaling)."""
