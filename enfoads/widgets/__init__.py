"""ipywidgets panels over the Studio facade (the notebook and the Voila dashboard).

Never imports torch: panels talk to the facade only (``enfoads.core.api.StudioAPI``: the
engine's ``Studio`` in the notebook, an ``AttachedStudio`` on a dashboard page).
"""
