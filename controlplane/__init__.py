"""VoxEdge control plane: store, gRPC edge service, auth/tenancy, CA and pairing."""
