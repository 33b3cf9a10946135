"""The embedded HTTP + Socket.IO server that gives the React client the Studio's endpoints.

Importing it starts nothing and imports no model library.
"""
