"""The studio's core: settings, events, jobs, assets, the VRAM manager and the pipelines.

Nothing here imports ipywidgets; heavy libraries (torch, diffusers, onnxruntime) are imported
inside the functions that need them.
"""
