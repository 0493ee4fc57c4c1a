"""Deploying the embedding server: locally as a background process, or on Kubernetes."""
