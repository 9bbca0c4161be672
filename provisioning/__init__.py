"""The admin HTTPS API (DESIGN.md, "The house"): request and response schemas, field
validation, the FastAPI routes, and the ``Backend`` protocol the routes call.

Imports nothing of ours (the arrows): ``controlplane.api`` implements ``Backend`` over the
store and builds the app with ``provisioning.app.build_api``.
"""
