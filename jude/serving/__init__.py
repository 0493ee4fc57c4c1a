"""The embedding server: engine (model), micro-batcher, HTTP app (create_app) and gRPC service."""
